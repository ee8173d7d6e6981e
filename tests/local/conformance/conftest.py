"""Fixtures of the conformance suite: boto3 clients, raw signed Query requests (GET and POST).

Each test states one documented behaviour of AWS (SimpleDB, EC2) that the local cloud must keep;
its name says the rule. The same rules are checked with the AWS CLI v1 and an older boto3 in their
own virtual environments (test_other_clients.py, marked slow).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conformance_helpers import QueryClient

_names = itertools.count(1)


@pytest.fixture(params=["GET", "POST"])
def raw_sdb(request: pytest.FixtureRequest, local_cloud: Any) -> QueryClient:
    """SimpleDB's Query API by hand, as GET and as POST (older SDKs send GET)."""
    return QueryClient(local_cloud.endpoint, request.param)


@pytest.fixture
def raw_ec2(local_cloud: Any) -> QueryClient:
    return QueryClient(local_cloud.endpoint, "POST", version="2016-11-15", sigv4_service="ec2")


@pytest.fixture
def sdb(boto3_client: Callable[[str], Any]) -> Any:
    return boto3_client("sdb")


@pytest.fixture
def ec2(boto3_client: Callable[[str], Any]) -> Any:
    return boto3_client("ec2")


@pytest.fixture
def domain(sdb: Any) -> Iterator[str]:
    """A fresh SimpleDB domain, deleted afterwards."""
    name = f"conformance-{next(_names)}"
    sdb.create_domain(DomainName=name)
    yield name
    sdb.delete_domain(DomainName=name)
