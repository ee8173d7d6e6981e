"""The local SimpleDB's select index answers exactly what a scan of the whole domain answers.

Random puts (adding values, replacing them), attribute and item deletes, then a set of selects
whose comparisons sit on the values' edges, compared page by page (items, order, NextToken)
between the indexed select and the full scan. In process, without a server: a few seconds.
"""

from __future__ import annotations

import random
from typing import Any

from moto.sdb.models import FakeDomain

from awsac_tui.local import simpledb

DOMAIN = "idx-test"
VALUES = ["", "a", "a%", "ab", "abc", "b", "b'c", "ba", "z", "\u00e9", "2026-01-01T00:00:0"]


class _Backend:
    def __init__(self) -> None:
        self.domain = FakeDomain(name=DOMAIN)

    def _get_domain(self, name: str) -> Any:
        assert name == DOMAIN
        return self.domain


def _stamp(rng: random.Random) -> str:
    return f"2026-01-01T00:00:{rng.randrange(60):02d}.{rng.randrange(3)}Z"


def _value(rng: random.Random) -> str:
    return rng.choice(VALUES) if rng.random() < 0.4 else _stamp(rng)


def _mutate(rng: random.Random, backend: _Backend) -> None:
    domain = backend.domain
    name = f"job{rng.randrange(40)}"
    roll = rng.random()
    if roll < 0.6:
        attrs = [
            {"Name": rng.choice(["updated", "status", "tag"]), "Value": _value(rng)}
            for _ in range(rng.randrange(1, 4))
        ]
        for a in attrs:
            if rng.random() < 0.7:
                a["Replace"] = "true"
        simpledb._put(domain, name, attrs)
    elif roll < 0.8:
        item = domain.items.get(name)
        if item is not None and item.attributes:
            pick = rng.choice(item.attributes)
            one: dict[str, Any] = {"Name": pick["Name"]}
            if rng.random() < 0.5:
                one["Value"] = pick["Value"]
            simpledb._delete(domain, name, [one])
    else:
        simpledb._delete(domain, name, None)


def _queries(rng: random.Random) -> list[str]:
    q = f"select * from `{DOMAIN}`"
    edge = _stamp(rng)
    value = rng.choice(VALUES).replace("'", "''")
    return [
        q,
        f"select count(*) from `{DOMAIN}` where updated >= '{edge}'",
        f"{q} where updated > '{edge}'",
        f"{q} where updated >= '{edge}' limit 3",
        f"{q} where updated < '{edge}' limit 5",
        f"{q} where updated <= '{edge}'",
        f"{q} where updated = '{edge}'",
        f"{q} where updated between '{edge}' and '2026-01-01T00:00:40.1Z' limit 4",
        f"{q} where status = '{value}' or tag > '{value}' limit 6",
        f"{q} where status in ('a', 'ab', '{value}') and updated > '{edge}'",
        f"{q} where status like 'a%' limit 2",
        f"{q} where tag like '{value}%'",
        f"{q} where every(status) >= 'a'",
        f"{q} where status is not null and updated != '{edge}'",
        f"{q} where updated > '{edge}' and updated < '2026-01-01T00:00:45Z'",
        f"{q} where updated > '{edge}' intersection status < 'b'",
        f"{q} where itemName() in ('job1', 'job2', 'job30') and status is not null",
        f"{q} where itemName() > 'job2' limit 3",
        f"{q} where updated > '{edge}' order by updated desc limit 4",
        f"{q} where status >= '' order by status limit 7",
        f"select itemName() from `{DOMAIN}` where not status = 'a' limit 5",
    ]


def _pages(backend: _Backend, expression: str, use_index: bool) -> list[dict[str, Any]]:
    pages, token = [], None
    while True:
        page = simpledb.run_select(backend, expression, token, use_index=use_index)
        pages.append(page)
        token = page.get("NextToken")
        if not token:
            return pages


def test_indexed_select_equals_the_full_scan() -> None:
    rng = random.Random(20)
    backend = _Backend()
    compared = nonempty = 0
    for _round in range(60):
        for _ in range(rng.randrange(1, 12)):
            _mutate(rng, backend)
        for expression in _queries(rng):
            indexed = _pages(backend, expression, use_index=True)
            assert indexed == _pages(backend, expression, use_index=False), expression
            compared += 1
            nonempty += bool(indexed[0]["Items"])
    assert simpledb._INDEXES.get(backend.domain) is not None
    assert compared == 60 * len(_queries(rng)) and nonempty > compared // 2


def test_the_index_narrows_the_items_tested() -> None:
    backend = _Backend()
    for n in range(2000):
        simpledb._put(backend.domain, f"job{n}", [{"Name": "updated", "Value": f"{n:06d}"}])
    expression = f"select * from `{DOMAIN}` where updated >= '001990'"
    assert len(simpledb.run_select(backend, expression, None)["Items"]) == 10
    index = simpledb._INDEXES[backend.domain]
    spans = index.candidates(backend.domain, simpledb.parse_select(expression).where)
    assert spans is not None and sum(hi - lo for _, lo, hi in spans) == 10
    simpledb._put(
        backend.domain, "job5", [{"Name": "updated", "Value": "002000", "Replace": "true"}]
    )
    simpledb._delete(backend.domain, "job1995", None)
    got = simpledb.run_select(backend, expression, None)["Items"]
    # a replaced item keeps its place in the domain's order; a deleted one leaves the index
    assert [i["Name"] for i in got] == [f"job{n}" for n in (5, *range(1990, 2000)) if n != 1995]
