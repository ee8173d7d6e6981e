"""SimpleDB as its Developer Guide documents it (API version 2009-04-15), clause by clause."""

from __future__ import annotations

import base64
from typing import Any

import botocore.exceptions
import pytest
from conformance_helpers import QueryClient, error_of


def _names(items: list[dict[str, Any]]) -> list[str]:
    return sorted(item["Name"] for item in items)


def _attrs(sdb: Any, domain: str, item: str) -> dict[str, list[str]]:
    got: dict[str, list[str]] = {}
    for attr in sdb.get_attributes(DomainName=domain, ItemName=item, ConsistentRead=True).get(
        "Attributes", []
    ):
        got.setdefault(attr["Name"], []).append(attr["Value"])
    return {k: sorted(v) for k, v in got.items()}


# ---- requests ------------------------------------------------------------------------------------


def test_query_requests_reach_simpledb_as_get_and_as_post(
    raw_sdb: QueryClient, sdb: Any, domain: str
) -> None:
    put = raw_sdb(
        "PutAttributes",
        DomainName=domain,
        ItemName="item",
        Attribute__1__Name="colour",
        Attribute__1__Value="blue",
    )
    assert put.status == 200 and put.root.tag == "PutAttributesResponse"
    got = raw_sdb("GetAttributes", DomainName=domain, ItemName="item")
    assert got.text("GetAttributesResult/Attribute/Value") == "blue"
    assert _attrs(sdb, domain, "item") == {"colour": ["blue"]}
    listed = raw_sdb("ListDomains")
    assert domain in [e.text for e in listed.root.iter("DomainName")]


def test_numbered_parameters_may_start_at_zero(raw_sdb: QueryClient, sdb: Any, domain: str) -> None:
    answer = raw_sdb(
        "BatchPutAttributes",
        DomainName=domain,
        Item__0__ItemName="first",
        Item__0__Attribute__0__Name="a",
        Item__0__Attribute__0__Value="0",
        Item__0__Attribute__1__Name="b",
        Item__0__Attribute__1__Value="1",
        Item__1__ItemName="second",
        Item__1__Attribute__0__Name="a",
        Item__1__Attribute__0__Value="x",
    )
    assert answer.status == 200, answer.body
    assert _attrs(sdb, domain, "first") == {"a": ["0"], "b": ["1"]}
    assert _attrs(sdb, domain, "second") == {"a": ["x"]}


def test_numbered_parameters_may_have_gaps(raw_sdb: QueryClient, sdb: Any, domain: str) -> None:
    answer = raw_sdb(
        "PutAttributes",
        DomainName=domain,
        ItemName="gappy",
        Attribute__1__Name="a",
        Attribute__1__Value="1",
        Attribute__3__Name="c",
        Attribute__3__Value="3",
        Attribute__10__Name="j",
        Attribute__10__Value="10",
    )
    assert answer.status == 200, answer.body
    assert _attrs(sdb, domain, "gappy") == {"a": ["1"], "c": ["3"], "j": ["10"]}
    only = raw_sdb("GetAttributes", DomainName=domain, ItemName="gappy", AttributeName__0="c")
    assert [e.text for e in only.root.iter("Name")] == ["c"]


# ---- conditional puts and deletes ------------------------------------------------------------------


def test_a_conditional_put_in_the_documented_expected_1_form_is_checked(
    raw_sdb: QueryClient, sdb: Any, domain: str
) -> None:
    sdb.put_attributes(DomainName=domain, ItemName="job1", Attributes=[{"Name": "s", "Value": "a"}])
    refused = raw_sdb(
        "PutAttributes",
        DomainName=domain,
        ItemName="job1",
        Attribute__1__Name="s",
        Attribute__1__Value="b",
        Attribute__1__Replace="true",
        Expected__1__Name="s",
        Expected__1__Value="not-a",
    )
    assert (refused.status, refused.error_code) == (409, "ConditionalCheckFailed")
    assert _attrs(sdb, domain, "job1") == {"s": ["a"]}
    accepted = raw_sdb(
        "PutAttributes",
        DomainName=domain,
        ItemName="job1",
        Attribute__1__Name="s",
        Attribute__1__Value="b",
        Attribute__1__Replace="true",
        Expected__1__Name="s",
        Expected__1__Value="a",
    )
    assert accepted.status == 200
    assert _attrs(sdb, domain, "job1") == {"s": ["b"]}


def test_a_conditional_delete_whose_condition_fails_deletes_nothing(
    raw_sdb: QueryClient, sdb: Any, domain: str
) -> None:
    sdb.put_attributes(
        DomainName=domain,
        ItemName="keep",
        Attributes=[{"Name": "s", "Value": "running"}, {"Name": "n", "Value": "1"}],
    )
    refused = raw_sdb(
        "DeleteAttributes",
        DomainName=domain,
        ItemName="keep",
        Expected__1__Name="s",
        Expected__1__Value="finished",
    )
    assert (refused.status, refused.error_code) == (409, "ConditionalCheckFailed")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sdb.delete_attributes(
            DomainName=domain, ItemName="keep", Expected={"Name": "s", "Exists": False}
        )
    assert error_of(caught.value) == ("ConditionalCheckFailed", 409)
    assert _attrs(sdb, domain, "keep") == {"n": ["1"], "s": ["running"]}


@pytest.mark.parametrize(
    "expected,code,status",
    [
        ({"Name": "s", "Value": "x", "Exists": False}, "ExistsAndExpectedValue", 400),
        ({"Name": "s", "Exists": True}, "IncompleteExpectedExpression", 400),
        ({"Name": "s"}, "IncompleteExpectedExpression", 400),
        ({"Name": "absent", "Value": "x"}, "AttributeDoesNotExist", 404),
        ({"Name": "multi", "Value": "x"}, "MultiValuedAttribute", 409),
        ({"Name": "s", "Value": "other"}, "ConditionalCheckFailed", 409),
        ({"Name": "s", "Exists": False}, "ConditionalCheckFailed", 409),
    ],
)
def test_a_failed_condition_has_the_documented_error_code_and_http_status(
    sdb: Any, domain: str, expected: dict[str, Any], code: str, status: int
) -> None:
    sdb.put_attributes(
        DomainName=domain,
        ItemName="i",
        Attributes=[
            {"Name": "s", "Value": "v"},
            {"Name": "multi", "Value": "1"},
            {"Name": "multi", "Value": "2"},
        ],
    )
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sdb.put_attributes(
            DomainName=domain,
            ItemName="i",
            Attributes=[{"Name": "s", "Value": "new", "Replace": True}],
            Expected=expected,
        )
    assert error_of(caught.value) == (code, status)
    assert _attrs(sdb, domain, "i")["s"] == ["v"]


# ---- select --------------------------------------------------------------------------------------


@pytest.fixture
def keywords(sdb: Any, domain: str) -> str:
    sdb.batch_put_attributes(
        DomainName=domain,
        Items=[
            {
                "Name": "book",
                "Attributes": [
                    {"Name": "Keyword", "Value": "Book"},
                    {"Name": "Keyword", "Value": "Hardcover"},
                    {"Name": "Year", "Value": "1980"},
                    {"Name": "Year", "Value": "2005"},
                ],
            },
            {"Name": "dvd", "Attributes": [{"Name": "Keyword", "Value": "DVD"}]},
        ],
    )
    return domain


def _select(sdb: Any, expression: str) -> list[str]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"SelectExpression": expression, "ConsistentRead": True}
    while True:
        page = sdb.select(**kwargs)
        items.extend(page.get("Items", []))
        if not page.get("NextToken"):
            return _names(items)
        kwargs["NextToken"] = page["NextToken"]


def test_each_value_of_a_multi_valued_attribute_is_compared_on_its_own(
    sdb: Any, keywords: str
) -> None:
    q = f"select itemName() from `{keywords}` where"
    assert _select(sdb, f"{q} Keyword = 'Book' and Keyword = 'Hardcover'") == []
    assert _select(sdb, f"{q} Year > '1990' and Year < '2000'") == []
    assert _select(sdb, f"{q} Keyword = 'Book' or Keyword = 'DVD'") == ["book", "dvd"]


def test_intersection_asks_for_both_values_of_a_multi_valued_attribute(
    sdb: Any, keywords: str
) -> None:
    q = f"select itemName() from `{keywords}` where"
    assert _select(sdb, f"{q} Keyword = 'Book' intersection Keyword = 'Hardcover'") == ["book"]
    assert _select(sdb, f"{q} Year < '1990' intersection Year > '2000'") == ["book"]


def _count(sdb: Any, expression: str, **kwargs: Any) -> tuple[int, str | None]:
    page = sdb.select(SelectExpression=expression, ConsistentRead=True, **kwargs)
    (item,) = page["Items"]
    assert item["Name"] == "Domain"
    return int(item["Attributes"][0]["Value"]), page.get("NextToken")


def test_count_is_capped_by_limit_and_takes_limits_over_2500(sdb: Any, domain: str) -> None:
    for start in range(0, 30, 25):
        sdb.batch_put_attributes(
            DomainName=domain,
            Items=[
                {"Name": f"job{n:02d}", "Attributes": [{"Name": "n", "Value": f"{n:02d}"}]}
                for n in range(start, min(start + 25, 30))
            ],
        )
    everything = f"select count(*) from `{domain}`"
    assert _count(sdb, everything) == (30, None)
    assert _count(sdb, everything + " limit 5000") == (30, None)
    capped, token = _count(sdb, f"select count(*) from `{domain}` where n >= '00' limit 10")
    assert capped == 10 and token
    # the next token of count(*) and of select are interchangeable (same where and order by)
    rest = sdb.select(
        SelectExpression=f"select itemName() from `{domain}` where n >= '00' limit 100",
        NextToken=token,
    )["Items"]
    assert len(rest) == 20
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sdb.select(SelectExpression=f"select * from `{domain}` limit 2501")
    assert error_of(caught.value)[0] == "InvalidQueryExpression"


def test_like_escapes_percent_with_a_backslash(sdb: Any, domain: str) -> None:
    sdb.batch_put_attributes(
        DomainName=domain,
        Items=[
            {"Name": "pct", "Attributes": [{"Name": "v", "Value": "done 3%"}]},
            {"Name": "num", "Attributes": [{"Name": "v", "Value": "done 35"}]},
        ],
    )
    q = f"select itemName() from `{domain}` where v like"
    assert _select(sdb, f"{q} '%3\\%'") == ["pct"]
    assert _select(sdb, f"{q} '%3%'") == ["num", "pct"]


def test_count_is_not_a_reserved_word_but_the_documented_keywords_are(
    sdb: Any, domain: str
) -> None:
    sdb.put_attributes(
        DomainName=domain,
        ItemName="c",
        Attributes=[{"Name": "count", "Value": "7"}, {"Name": "limit", "Value": "1"}],
    )
    assert _select(sdb, f"select count from `{domain}` where count = '7'") == ["c"]
    assert _select(sdb, f"select * from `{domain}` where `limit` = '1'") == ["c"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sdb.select(SelectExpression=f"select * from `{domain}` where limit = '1'")
    assert error_of(caught.value) == ("InvalidQueryExpression", 400)


# ---- domains, metadata, encoding ------------------------------------------------------------------


def test_list_domains_honours_max_number_of_domains_with_a_next_token(sdb: Any) -> None:
    names = [f"listing-{n}" for n in range(5)]
    for name in names:
        sdb.create_domain(DomainName=name)
    try:
        seen: list[str] = []
        kwargs: dict[str, Any] = {"MaxNumberOfDomains": 2}
        while True:
            page = sdb.list_domains(**kwargs)
            assert len(page.get("DomainNames", [])) <= 2
            seen.extend(page.get("DomainNames", []))
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        assert set(names) <= set(seen) and len(seen) == len(set(seen))
        for bad in (0, 101):
            with pytest.raises(botocore.exceptions.ClientError) as caught:
                sdb.list_domains(MaxNumberOfDomains=bad)
            assert error_of(caught.value) == ("InvalidParameterValue", 400)
    finally:
        for name in names:
            sdb.delete_domain(DomainName=name)


def test_every_answer_and_every_error_carries_box_usage(raw_sdb: QueryClient, domain: str) -> None:
    ok = raw_sdb("DomainMetadata", DomainName=domain)
    assert ok.status == 200
    assert float(ok.text("ResponseMetadata/BoxUsage") or "0") > 0
    bad = raw_sdb("GetAttributes", DomainName="no-such-domain-here", ItemName="x")
    assert (bad.status, bad.error_code) == (400, "NoSuchDomain")
    assert float(bad.text(".//Errors/Error/BoxUsage") or "0") > 0


def test_a_value_with_a_control_character_comes_back_base64_encoded(
    raw_sdb: QueryClient, sdb: Any, domain: str
) -> None:
    value = "red\x1b[0m\x01end"
    sdb.put_attributes(
        DomainName=domain,
        ItemName="ctl",
        Attributes=[{"Name": "plain", "Value": "ok"}, {"Name": "log", "Value": value}],
    )
    got = raw_sdb("GetAttributes", DomainName=domain, ItemName="ctl")
    encoded = [e for e in got.root.iter("Value") if e.get("encoding") == "base64"]
    assert [base64.b64decode(e.text or "").decode() for e in encoded] == [value]
    # every client can still read the item (botocore hands back the base64 text)
    assert _attrs(sdb, domain, "ctl") == {
        "log": [base64.b64encode(value.encode()).decode()],
        "plain": ["ok"],
    }
    assert _select(sdb, f"select * from `{domain}`") == ["ctl"]
