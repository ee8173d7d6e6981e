"""The sync status store: S3-only against moto, SimpleDB against moto plus a stubbed select."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from awsac_agent import faults, s3layout
from awsac_agent.errors import FormatError
from awsac_agent.status import FINISHED, PENDING, RUNNING, JobRecord, select_all_jobs
from awsac_agent.store import S3Store, SimpleDbStore, make_store
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

SID = "260101_1200--unit--beef"
BUCKET = "awsac-unit"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWSAC_RETRY_BASE_SECONDS": "0.01",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def _s3() -> Any:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    return s3


def test_s3_store_writes_whole_records_and_reads_them_back(aws: None) -> None:
    s3 = _s3()
    store = S3Store(s3, BUCKET, SID)
    store.put(JobRecord(1, PENDING, instance_id="i-1", launchindex=0, shellscript="a.sh"))
    store.put(JobRecord(2, PENDING, instance_id="i-1", launchindex=0, shellscript="a.sh"))
    store.update(1, status=RUNNING, runstarttime="2026-01-01T12:00:00Z")
    rec = store.update(1, status=FINISHED, returncode=0)
    assert rec.runstarttime == "2026-01-01T12:00:00Z"
    fresh = S3Store(s3, BUCKET, SID)  # no cache: reads the objects
    assert fresh.get(1) == rec
    assert [r.jobnr for r in fresh.read_all()] == [1, 2]
    body = s3.get_object(Bucket=BUCKET, Key=s3layout.status_key(SID, 1))["Body"].read().decode()
    assert JobRecord.from_json(body).status == FINISHED
    assert fresh.get(7) is None


def test_s3_store_read_all_fetches_only_changed_records(aws: None) -> None:
    s3 = _s3()
    writer = S3Store(s3, BUCKET, SID)
    for n in (1, 2, 3):
        writer.put(JobRecord(n))
    reader = S3Store(s3, BUCKET, SID)
    assert len(reader.read_all()) == 3 and reader.fetches == 3
    writer.update(2, status=RUNNING)
    records = reader.read_all()
    assert reader.fetches == 4  # only job 2 was fetched again
    assert [r.status for r in records] == [PENDING, RUNNING, PENDING]


def test_s3_store_kill_requests_and_delete_all(aws: None) -> None:
    s3 = _s3()
    store = S3Store(s3, BUCKET, SID)
    for n in (1, 2, 3):
        store.put(JobRecord(n))
    assert store.kill_requests([1, 2, 3]) == set()
    store.request_kill(2)
    assert store.kill_requests([1, 2, 3]) == {2}
    assert store.kill_requests([1, 3]) == set()
    store.delete_all()
    assert store.read_all() == []
    assert store.kill_requests([2]) == set()


def test_s3_store_retries_a_failed_put(aws: None) -> None:
    s3 = faults.FaultPlan(faults.parse_faults("s3:PutObject:fail=2:SlowDown")).install(_s3())
    store = S3Store(s3, BUCKET, SID)
    store.put(JobRecord(1))
    assert S3Store(s3, BUCKET, SID).get(1) == JobRecord(1)


@pytest.fixture
def sdb(boto3_client: Any) -> Iterator[tuple[Any, str]]:
    """SimpleDB of the local cloud (moto lacks CreateDomain/Select in-process) and a fresh domain."""
    import uuid

    client = boto3_client("sdb")
    sid = f"260101_1200--unit--{uuid.uuid4().hex[:4]}"
    yield client, sid
    client.delete_domain(DomainName=sid)


def test_simpledb_store_put_update_get(sdb: tuple[Any, str]) -> None:
    sdb, SID = sdb  # noqa: N806
    store = SimpleDbStore(sdb, SID)
    store.ensure()
    store.put(JobRecord(3, PENDING, instance_id="i-9", launchindex=1, snapshot="snap-01234567"))
    store.update(3, status=RUNNING, runstarttime="2026-01-01T12:00:00Z")
    got = SimpleDbStore(sdb, SID).get(3)
    assert got == JobRecord(
        3,
        RUNNING,
        instance_id="i-9",
        launchindex=1,
        snapshot="snap-01234567",
        runstarttime="2026-01-01T12:00:00Z",
    )
    assert SimpleDbStore(sdb, SID).get(4) is None


def test_simpledb_update_keeps_a_clients_kill_request(sdb: tuple[Any, str]) -> None:
    sdb, SID = sdb  # noqa: N806
    agent = SimpleDbStore(sdb, SID)
    agent.ensure()
    agent.put(JobRecord(1, RUNNING))
    SimpleDbStore(sdb, SID).request_kill(1)
    agent.update(1, status=FINISHED)
    got = SimpleDbStore(sdb, SID).get(1)
    assert got is not None and (got.status, got.kill) == (FINISHED, "requested")


def test_simpledb_update_after_a_failed_one_rewrites_the_record(
    sdb: tuple[Any, str], boto3_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWSAC_RETRY_BASE_SECONDS", "0.01")
    sdb, SID = sdb  # noqa: N806
    agent = SimpleDbStore(sdb, SID)
    agent.ensure()
    agent.put(JobRecord(1, PENDING))
    faults.FaultPlan(
        faults.parse_faults("sdb:PutAttributes:fail=9:AccessDenied:status=403")
    ).install(sdb)
    with pytest.raises(ClientError):
        agent.update(1, status=RUNNING, runstarttime="2026-01-01T12:00:00Z")
    healthy = boto3_client("sdb")
    agent.sdb = healthy
    agent.update(1, returncode=0)
    got = SimpleDbStore(healthy, SID).get(1)
    assert got is not None and got.runstarttime == "2026-01-01T12:00:00Z" and got.returncode == 0


def test_simpledb_read_all_pages_with_next_token() -> None:
    sdb = boto3.client(
        "sdb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    expr = select_all_jobs(SID)
    item = lambda n: {"Name": f"job{n}", "Attributes": [{"Name": "status", "Value": "running"}]}  # noqa: E731
    with Stubber(sdb) as stub:
        stub.add_response(
            "select",
            {"Items": [item(2)], "NextToken": "t1"},
            {"SelectExpression": expr, "ConsistentRead": True},
        )
        stub.add_response(
            "select",
            {"Items": [item(1), {"Name": "other", "Attributes": []}]},
            {"SelectExpression": expr, "ConsistentRead": True, "NextToken": "t1"},
        )
        records = SimpleDbStore(sdb, SID).read_all()
        stub.assert_no_pending_responses()
    assert [(r.jobnr, r.status) for r in records] == [(1, "running"), (2, "running")]


def test_simpledb_kill_requests_use_the_quoted_select() -> None:
    sdb = boto3.client(
        "sdb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(sdb) as stub:
        stub.add_response("select", {"Items": [{"Name": "job2", "Attributes": []}]})
        assert SimpleDbStore(sdb, SID).kill_requests([1, 2]) == {2}
        stub.assert_no_pending_responses()


def test_make_store_rejects_unknown_kinds() -> None:
    with pytest.raises(FormatError, match="dynamo"):
        make_store("dynamo", object(), BUCKET, SID)
