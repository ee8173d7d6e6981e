"""SimpleDB completed: the operations the job system uses, through plain boto3 as a user calls them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from awsac_tui.local.simpledb import InvalidQueryExpression, matches, parse_select


@pytest.fixture
def sdb(boto3_client: Any) -> Any:
    return boto3_client("sdb")


@pytest.fixture
def domain(sdb: Any) -> str:
    name = f"awsac-test-{uuid.uuid4().hex[:8]}"
    sdb.create_domain(DomainName=name)
    yield name
    sdb.delete_domain(DomainName=name)


def _put(sdb: Any, domain: str, item: str, **attrs: str) -> None:
    sdb.put_attributes(
        DomainName=domain,
        ItemName=item,
        Attributes=[{"Name": k, "Value": v, "Replace": True} for k, v in attrs.items()],
    )


def _select_all(sdb: Any, expression: str) -> list[dict[str, Any]]:
    """Every page, through botocore's paginator (as client and agent read)."""
    pages = sdb.get_paginator("select").paginate(SelectExpression=expression)
    return [item for page in pages for item in page.get("Items", [])]


def _names(items: list[dict[str, Any]]) -> list[str]:
    return [i["Name"] for i in items]


def _error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return excinfo.value.response["Error"]["Code"]


def test_create_domain_is_idempotent_and_keeps_items(sdb: Any, domain: str) -> None:
    _put(sdb, domain, "job1", status="pending")
    sdb.create_domain(DomainName=domain)
    got = sdb.get_attributes(DomainName=domain, ItemName="job1")["Attributes"]
    assert got == [{"Name": "status", "Value": "pending"}]
    assert domain in sdb.list_domains()["DomainNames"]


def test_get_of_missing_item_is_empty_and_creates_nothing(sdb: Any, domain: str) -> None:
    assert "Attributes" not in sdb.get_attributes(DomainName=domain, ItemName="nothing")
    assert sdb.domain_metadata(DomainName=domain)["ItemCount"] == 0


def test_select_where_order_limit_and_paging(sdb: Any, domain: str) -> None:
    for n in range(1, 8):
        _put(sdb, domain, f"job{n}", status="running" if n % 2 else "pending", n=f"{n:03d}")
    q = f"select * from `{domain}`"
    assert sorted(_names(_select_all(sdb, q))) == sorted(f"job{n}" for n in range(1, 8))
    running = _select_all(sdb, f"{q} where status = 'running' and n > '' order by n desc")
    assert _names(running) == ["job7", "job5", "job3", "job1"]
    first = sdb.select(SelectExpression=f"{q} where n >= '002' order by n asc limit 2")
    assert _names(first["Items"]) == ["job2", "job3"]
    second = sdb.select(
        SelectExpression=f"{q} where n >= '002' order by n asc limit 2",
        NextToken=first["NextToken"],
    )
    assert _names(second["Items"]) == ["job4", "job5"]
    paged = _select_all(sdb, f"{q} where n >= '002' order by n asc limit 2")
    assert _names(paged) == [f"job{n}" for n in range(2, 8)]


def test_select_operators(sdb: Any, domain: str) -> None:
    _put(sdb, domain, "a", status="finished", host="i-1")
    _put(sdb, domain, "b", status="failed")
    _put(sdb, domain, "c", status="running", host="i-2")
    q = f"select itemName() from `{domain}` where"

    def names(where: str) -> list[str]:
        return sorted(_names(_select_all(sdb, f"{q} {where}")))

    assert names("status != 'running'") == ["a", "b"]
    assert names("status like 'f%'") == ["a", "b"]
    assert names("status not like 'f%'") == ["c"]
    assert names("status like '%ish%'") == ["a"]
    assert names("status in ('failed', 'running')") == ["b", "c"]
    assert names("host is null") == ["b"]
    assert names("host is not null") == ["a", "c"]
    assert names("status between 'f' and 'g'") == ["a", "b"]
    assert names("status = 'failed' or host = 'i-2'") == ["b", "c"]
    assert names("not (status = 'failed') and (host = 'i-1' or host = 'i-2')") == ["a", "c"]
    assert names("itemName() < 'b'") == ["a"]
    assert names("itemName() in ('a', 'c')") == ["a", "c"]
    items = _select_all(sdb, f"select itemName() from `{domain}`")
    assert all("Attributes" not in i or not i["Attributes"] for i in items)


def test_select_counts_and_chosen_attributes(sdb: Any, domain: str) -> None:
    for n in range(5):
        _put(sdb, domain, f"job{n}", status="pending", host="i-1")
    count = sdb.select(SelectExpression=f"select count(*) from `{domain}`")["Items"]
    assert count == [{"Name": "Domain", "Attributes": [{"Name": "Count", "Value": "5"}]}]
    items = _select_all(sdb, f"select status from `{domain}` where itemName() = 'job1'")
    assert items == [{"Name": "job1", "Attributes": [{"Name": "status", "Value": "pending"}]}]


def test_comparison_is_lexicographic(sdb: Any, domain: str) -> None:
    _put(sdb, domain, "x", size="9")
    _put(sdb, domain, "y", size="10")
    names = _names(_select_all(sdb, f"select * from `{domain}` where size > '5'"))
    assert names == ["x"]  # '10' < '5' as strings, as in SimpleDB


def test_quoting_with_doubled_quotes_and_backticks(sdb: Any, domain: str) -> None:
    sdb.put_attributes(
        DomainName=domain,
        ItemName="it's",
        Attributes=[
            {"Name": "we`ird", "Value": 'it\'s "quoted"'},
            {"Name": "select", "Value": "kw"},
        ],
    )
    q = f"select * from `{domain}`"
    assert _names(_select_all(sdb, f"{q} where `we``ird` = 'it''s \"quoted\"'")) == ["it's"]
    assert _names(_select_all(sdb, f'{q} where `we``ird` = "it\'s ""quoted"""')) == ["it's"]
    assert _names(_select_all(sdb, f"{q} where itemName() = 'it''s'")) == ["it's"]
    assert _names(_select_all(sdb, f"{q} where `select` = 'kw'")) == ["it's"]


def test_multi_valued_attributes_and_every(sdb: Any, domain: str) -> None:
    sdb.put_attributes(
        DomainName=domain,
        ItemName="m",
        Attributes=[{"Name": "tag", "Value": "a"}, {"Name": "tag", "Value": "b"}],
    )
    sdb.put_attributes(
        DomainName=domain,
        ItemName="m",
        Attributes=[{"Name": "tag", "Value": "a"}],  # an existing pair is not duplicated
    )
    got = sdb.get_attributes(DomainName=domain, ItemName="m")["Attributes"]
    assert sorted(a["Value"] for a in got) == ["a", "b"]
    q = f"select * from `{domain}` where"
    assert _names(_select_all(sdb, f"{q} tag = 'b'")) == ["m"]
    assert _names(_select_all(sdb, f"{q} every(tag) = 'b'")) == []
    assert _names(_select_all(sdb, f"{q} every(tag) in ('a', 'b')")) == ["m"]


@pytest.mark.parametrize(
    "expression",
    [
        "select * frm `{d}`",
        "select * from `{d}` where status = running",
        "select * from `{d}` where status ==  'x'",
        "select * from `{d}` where (status = 'x'",
        "select * from `{d}` limit 0",
        "select * from `{d}` limit 2501",
        "select * from `{d}` where status = 'x' trailing",
        "select from `{d}`",
        "select * from `{d}` where status = 'unterminated",
        "update `{d}` set a = 'b'",
        "select * from `{d}` where status ~ 'x'",
    ],
)
def test_bad_queries_give_invalid_query_expression(sdb: Any, domain: str, expression: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        sdb.select(SelectExpression=expression.format(d=domain))
    assert _error_code(excinfo) == "InvalidQueryExpression"


def test_sort_needs_a_predicate_and_bad_token_is_rejected(sdb: Any, domain: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        sdb.select(SelectExpression=f"select * from `{domain}` order by status")
    assert _error_code(excinfo) == "InvalidSortExpression"
    with pytest.raises(ClientError) as excinfo:
        sdb.select(SelectExpression=f"select * from `{domain}`", NextToken="garbage!")
    assert _error_code(excinfo) == "InvalidNextToken"
    with pytest.raises(ClientError) as excinfo:
        sdb.select(SelectExpression="select * from `no-such-domain-here`")
    assert _error_code(excinfo) == "NoSuchDomain"


def test_conditional_put(sdb: Any, domain: str) -> None:
    _put(sdb, domain, "job1", status="pending")

    def put(expected: dict[str, Any], value: str = "running") -> None:
        sdb.put_attributes(
            DomainName=domain,
            ItemName="job1",
            Attributes=[{"Name": "status", "Value": value, "Replace": True}],
            Expected=expected,
        )

    with pytest.raises(ClientError) as excinfo:
        put({"Name": "status", "Value": "running"})
    assert _error_code(excinfo) == "ConditionalCheckFailed"
    with pytest.raises(ClientError) as excinfo:
        put({"Name": "owner", "Value": "i-1"})
    assert _error_code(excinfo) == "AttributeDoesNotExist"
    with pytest.raises(ClientError) as excinfo:
        put({"Name": "status", "Exists": False})
    assert _error_code(excinfo) == "ConditionalCheckFailed"
    put({"Name": "status", "Value": "pending"})
    put({"Name": "owner", "Exists": False}, value="saving")
    got = sdb.get_attributes(DomainName=domain, ItemName="job1")["Attributes"]
    assert got == [{"Name": "status", "Value": "saving"}]


def test_delete_attributes(sdb: Any, domain: str) -> None:
    _put(sdb, domain, "job1", status="pending", kill="requested", host="i-1")
    sdb.delete_attributes(
        DomainName=domain, ItemName="job1", Attributes=[{"Name": "kill", "Value": "requested"}]
    )
    sdb.delete_attributes(
        DomainName=domain, ItemName="job1", Attributes=[{"Name": "host", "Value": "other"}]
    )
    got = sdb.get_attributes(DomainName=domain, ItemName="job1")["Attributes"]
    assert sorted(a["Name"] for a in got) == ["host", "status"]
    with pytest.raises(ClientError) as excinfo:
        sdb.delete_attributes(
            DomainName=domain, ItemName="job1", Expected={"Name": "status", "Value": "running"}
        )
    assert _error_code(excinfo) == "ConditionalCheckFailed"
    sdb.delete_attributes(DomainName=domain, ItemName="job1")
    assert _select_all(sdb, f"select * from `{domain}`") == []
    sdb.delete_attributes(DomainName=domain, ItemName="never-existed")


def test_batch_put_and_delete(sdb: Any, domain: str) -> None:
    items = [
        {"Name": f"job{n}", "Attributes": [{"Name": "status", "Value": "pending"}]}
        for n in range(25)
    ]
    sdb.batch_put_attributes(DomainName=domain, Items=items)
    assert sdb.domain_metadata(DomainName=domain)["ItemCount"] == 25
    with pytest.raises(ClientError) as excinfo:
        sdb.batch_put_attributes(
            DomainName=domain, Items=items + [{"Name": "job99", "Attributes": []}]
        )
    assert _error_code(excinfo) == "NumberSubmittedItemsExceeded"
    with pytest.raises(ClientError) as excinfo:
        sdb.batch_put_attributes(DomainName=domain, Items=items[:2] + items[:1])
    assert _error_code(excinfo) == "DuplicateItemName"
    sdb.batch_delete_attributes(DomainName=domain, Items=[{"Name": f"job{n}"} for n in range(20)])
    left = _select_all(sdb, f"select itemName() from `{domain}`")
    assert sorted(_names(left)) == sorted(f"job{n}" for n in range(20, 25))


def test_domain_metadata(sdb: Any, domain: str) -> None:
    _put(sdb, domain, "job1", status="pending", host="i-1")
    _put(sdb, domain, "job2", status="running")
    meta = sdb.domain_metadata(DomainName=domain)
    assert meta["ItemCount"] == 2
    assert meta["AttributeNameCount"] == 2
    assert meta["AttributeValueCount"] == 3
    assert meta["ItemNamesSizeBytes"] == 8
    assert meta["AttributeValuesSizeBytes"] == len("pending") + len("i-1") + len("running")
    with pytest.raises(ClientError) as excinfo:
        sdb.domain_metadata(DomainName="no-such-domain-here")
    assert _error_code(excinfo) == "NoSuchDomain"


def test_page_stops_at_one_megabyte(sdb: Any, domain: str) -> None:
    big = "x" * 1000
    for start in range(0, 1200, 25):
        sdb.batch_put_attributes(
            DomainName=domain,
            Items=[
                {"Name": f"i{n:05d}", "Attributes": [{"Name": "v", "Value": big}]}
                for n in range(start, start + 25)
            ],
        )
    first = sdb.select(SelectExpression=f"select * from `{domain}` limit 2500")
    assert 1000 <= len(first["Items"]) < 1200
    assert "NextToken" in first
    assert len(_select_all(sdb, f"select * from `{domain}` limit 2500")) == 1200


def test_parser_without_server() -> None:
    query = parse_select("select * from `d` where a = 'x' or not b like 'y%' limit 5")
    assert query.domain == "d" and query.limit == 5
    assert matches(query.where, "i", {"a": ["x"]})
    assert not matches(query.where, "i", {"b": ["yes"]})
    assert matches(query.where, "i", {"b": ["no"]})
    with pytest.raises(InvalidQueryExpression):
        parse_select("select * from d where")
