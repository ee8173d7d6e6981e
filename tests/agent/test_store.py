"""The sync status store and its background writer, on moto (S3) and the local cloud (SimpleDB):
records, claims, controls, heartbeats, and botocore as the one retry layer."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from awsac_agent import faults, s3layout
from awsac_agent.errors import FormatError
from awsac_agent.retry import botocore_config, requests_made
from awsac_agent.status import (
    FINISHED,
    LOST,
    PENDING,
    RUNNING,
    SAVING,
    Heartbeat,
    JobRecord,
    history_of,
    select_all_jobs,
)
from awsac_agent.store import (
    S3Store,
    SimpleDbStore,
    StatusWriter,
    make_store,
    read_controls,
    request_kill_object,
    write_heartbeat,
)
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

SID = "260101_1200--unit--beef"
BUCKET = "awsac-unit"


def same(a: JobRecord | None, b: JobRecord) -> bool:
    """Records equal but for ``updated`` (the time of the write)."""
    return (
        a is not None and a.updated is not None and a.with_(updated=None) == b.with_(updated=None)
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def _s3(total: int | None = None) -> Any:
    s3 = boto3.client("s3", region_name="us-east-1", config=botocore_config(total))
    s3.create_bucket(Bucket=BUCKET)
    return s3


def test_s3_store_writes_whole_records_and_reads_them_back(aws: None) -> None:
    s3 = _s3()
    store = S3Store(s3, BUCKET, SID)
    store.put(JobRecord(1, PENDING, instance_id="i-1", launchindex=0, shellscript="a.sh"))
    store.put(JobRecord(2, PENDING, instance_id="i-1", launchindex=0, shellscript="a.sh"))
    store.update(1, status=RUNNING, runstarttime="2026-01-01T12:00:00Z")
    rec = store.update(1, status=FINISHED, returncode=0)
    assert rec.runstarttime == "2026-01-01T12:00:00Z" and rec.updated
    fresh = S3Store(s3, BUCKET, SID)  # no cache: reads the objects
    assert fresh.get(1) == rec
    assert [r.jobnr for r in fresh.read_all()] == [1, 2]
    body = s3.get_object(Bucket=BUCKET, Key=s3layout.status_key(SID, 1))["Body"].read().decode()
    assert JobRecord.from_json(body).status == FINISHED
    assert fresh.get(7) is None


def test_every_write_stamps_updated_later_than_the_last(aws: None) -> None:
    store = S3Store(_s3(), BUCKET, SID)
    first = store.put(JobRecord(1))
    time.sleep(0.002)
    second = store.put(JobRecord(1, RUNNING))
    assert first.updated and second.updated and first.updated < second.updated


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


def test_controls_kills_and_watch_flags_in_one_listing(aws: None) -> None:
    s3 = _s3()
    calls: list[str] = []
    s3.meta.events.register("before-send.s3", lambda **kw: calls.append(kw["event_name"]))
    assert read_controls(s3, BUCKET, SID).kills == frozenset()
    request_kill_object(s3, BUCKET, SID, 2)
    s3.put_object(Bucket=BUCKET, Key=s3layout.watch_key(SID, 3), Body=b"x")
    s3.put_object(Bucket=BUCKET, Key=s3layout.control_prefix(SID) + "unrelated", Body=b"")
    calls.clear()
    controls = read_controls(s3, BUCKET, SID)
    assert controls.kills == {2} and controls.watched == {3}
    assert controls.read_at is not None
    assert calls == ["before-send.s3.ListObjectsV2"]  # one request for both kinds of control
    S3Store(s3, BUCKET, SID).delete_all()
    assert read_controls(s3, BUCKET, SID).kills == frozenset()


def test_watch_flag_expires_by_the_servers_clock(aws: None) -> None:
    s3 = _s3()
    s3.put_object(Bucket=BUCKET, Key=s3layout.watch_key(SID, 1), Body=b"x")
    late = datetime.now(UTC) + timedelta(seconds=61)
    s3.meta.events.register(
        "after-call.s3.ListObjectsV2",
        lambda parsed, **kw: parsed["ResponseMetadata"]["HTTPHeaders"].update(
            date=late.strftime("%a, %d %b %Y %H:%M:%S GMT")
        ),
    )
    assert read_controls(s3, BUCKET, SID).watched == frozenset()


def test_heartbeat_object_per_instance(aws: None) -> None:
    s3 = _s3()
    for beat in (1, 2):
        write_heartbeat(s3, BUCKET, SID, Heartbeat("i-1", 0, "t", 30.0, "running", (4,), beat))
    write_heartbeat(s3, BUCKET, SID, Heartbeat("i-2", 1, "t", 30.0, "running", (), 1))
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=s3layout.heartbeat_prefix(SID))
    assert [o["Key"] for o in listing["Contents"]] == [
        s3layout.heartbeat_key(SID, "i-1"),
        s3layout.heartbeat_key(SID, "i-2"),
    ]
    body = s3.get_object(Bucket=BUCKET, Key=s3layout.heartbeat_key(SID, "i-1"))["Body"].read()
    assert Heartbeat.from_json(body.decode()).beat == 2


def test_s3_claims_exactly_one_winner_and_requeue(aws: None) -> None:
    s3 = _s3()
    a, b = S3Store(s3, BUCKET, SID), S3Store(s3, BUCKET, SID)
    assert a.claimable(3) == [(1, 1), (2, 1), (3, 1)]
    rec = JobRecord(2, RUNNING, instance_id="i-a", attempt=1)
    assert a.claim(rec) is True
    assert b.claim(rec.with_(instance_id="i-b")) is False
    assert sorted(b.claimable(3)) == [(1, 1), (3, 1)]
    got = b.get(2)
    assert got is not None and got.instance_id == "i-a"
    again = a.requeue(got.with_(status=LOST, error="spot interruption notice at 12:00:00Z"))
    assert (again.status, again.attempt) == (PENDING, 2)
    assert sorted(b.claimable(3)) == [(1, 1), (2, 2), (3, 1)]
    assert b.claim(again.with_(status=RUNNING, instance_id="i-b")) is True
    assert history_of(b.get(2) or again)[0]["error"].startswith("spot interruption")


def test_s3_store_absorbs_two_failed_puts_in_botocores_retries(aws: None) -> None:
    """Faults are HTTP answers: botocore's own retry layer sees and retries them."""
    s3 = faults.FaultPlan(faults.parse_faults("s3:PutObject:fail=2:SlowDown")).install(_s3())
    store = S3Store(s3, BUCKET, SID)
    store.put(JobRecord(1))
    assert same(S3Store(s3, BUCKET, SID).get(1), JobRecord(1))


def test_failed_call_makes_at_most_the_configured_requests(aws: None) -> None:
    """A store answering 503 throughout: each call sends exactly total_max_attempts requests."""
    sent: list[str] = []
    s3 = _s3(total=3)
    plan = faults.FaultPlan(faults.parse_faults("s3:PutObject:for=30:ServiceUnavailable"))
    plan.install(s3)
    # counted apart from the fault hook: botocore's request-created fires once per HTTP attempt
    s3.meta.events.register("request-created.s3.PutObject", lambda **kw: sent.append("x"))
    store = S3Store(s3, BUCKET, SID)
    for _ in range(2):
        with pytest.raises(ClientError) as exc:
            store.put(JobRecord(1))
        assert requests_made(exc.value) == 3
    assert len(sent) == 6 and len(plan.injected) == 6


@pytest.fixture
def sdb(boto3_client: Any) -> Iterator[tuple[Any, str]]:
    """SimpleDB of the local cloud (moto lacks CreateDomain/Select in-process) and a fresh domain."""
    client = boto3_client("sdb")
    sid = f"260101_1200--unit--{uuid.uuid4().hex[:4]}"
    yield client, sid
    try:
        client.delete_domain(DomainName=sid)
    except ClientError:
        pass


def test_simpledb_store_put_update_get(sdb: tuple[Any, str]) -> None:
    sdb, SID = sdb  # noqa: N806
    store = SimpleDbStore(sdb, SID)
    store.ensure()
    store.put(JobRecord(3, PENDING, instance_id="i-9", launchindex=1, snapshot="snap-01234567"))
    store.update(3, status=RUNNING, runstarttime="2026-01-01T12:00:00Z")
    got = SimpleDbStore(sdb, SID).get(3)
    want = JobRecord(
        3,
        RUNNING,
        instance_id="i-9",
        launchindex=1,
        snapshot="snap-01234567",
        runstarttime="2026-01-01T12:00:00Z",
    )
    assert same(got, want)
    assert SimpleDbStore(sdb, SID).get(4) is None


def test_simpledb_creates_the_domain_only_when_a_write_finds_none(sdb: tuple[Any, str]) -> None:
    client, sid = sdb
    calls: list[str] = []
    client.meta.events.register(
        "before-send.sdb", lambda **kw: calls.append(kw["event_name"].rsplit(".", 1)[1])
    )
    client.create_domain(DomainName=sid)  # the client's start makes it
    calls.clear()
    SimpleDbStore(client, sid).put(JobRecord(1, RUNNING))
    assert calls == ["PutAttributes"]
    other = f"{sid}x"
    try:
        calls.clear()
        SimpleDbStore(client, other).put(JobRecord(1, RUNNING))
        assert calls == ["PutAttributes", "CreateDomain", "PutAttributes"]
    finally:
        client.delete_domain(DomainName=other)


def test_simpledb_update_keeps_a_clients_kill_request(sdb: tuple[Any, str]) -> None:
    sdb, SID = sdb  # noqa: N806
    agent = SimpleDbStore(sdb, SID)
    agent.ensure()
    agent.put(JobRecord(1, RUNNING))
    SimpleDbStore(sdb, SID).request_kill(1)
    agent.put(JobRecord(1, FINISHED))
    got = SimpleDbStore(sdb, SID).get(1)
    assert got is not None and (got.status, got.kill) == (FINISHED, "requested")


def test_simpledb_claims_race_exactly_one_winner(sdb: tuple[Any, str], boto3_client: Any) -> None:
    """Eight agents race for each of five pending jobs: each job is claimed exactly once."""
    client, sid = sdb
    SimpleDbStore(client, sid).ensure()
    SimpleDbStore(client, sid).put_many([JobRecord(n, PENDING) for n in range(1, 6)])
    stores = [SimpleDbStore(boto3_client("sdb"), sid) for _ in range(8)]
    assert sorted(stores[0].claimable(5)) == [(n, 1) for n in range(1, 6)]
    wins: dict[int, list[str]] = {n: [] for n in range(1, 6)}
    barrier = threading.Barrier(len(stores))

    def agent(i: int) -> None:
        barrier.wait()
        for n in range(1, 6):
            if stores[i].claim(JobRecord(n, RUNNING, instance_id=f"i-{i}")):
                wins[n].append(f"i-{i}")

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(w) == 1 for w in wins.values()), wins
    assert stores[0].claimable(5) == []
    for n, (owner,) in wins.items():
        got = stores[0].get(n)
        assert got is not None and (got.status, got.instance_id) == (RUNNING, owner)


def test_simpledb_requeue_clears_the_ended_attempt(sdb: tuple[Any, str]) -> None:
    client, sid = sdb
    store = SimpleDbStore(client, sid)
    store.ensure()
    store.put(JobRecord(1, LOST, instance_id="i-1", returncode=1, error="gone", kill="requested"))
    again = store.requeue(store.get(1) or JobRecord(1))
    got = store.get(1)
    assert got is not None and (got.status, got.attempt) == (PENDING, 2)
    assert (got.instance_id, got.returncode, got.error, got.kill) == (None, None, None, None)
    assert history_of(got) == history_of(again) and history_of(got)[0]["error"] == "gone"
    assert store.claimable(1) == [(1, 2)]


def _sdb_client(local_cloud: Any, total: int) -> Any:
    from awsac_tui.local.service import client_env

    env = client_env(local_cloud)
    return boto3.session.Session().client(
        "sdb",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=botocore_config(total),
    )


def test_writer_coalesces_and_never_blocks_during_an_outage(
    sdb: tuple[Any, str], local_cloud: Any
) -> None:
    """The store fails every write for a while: submit() returns at once, the newest record per
    job is written once the store answers again, and a quick save costs no write of its own."""
    _, sid = sdb
    client = _sdb_client(local_cloud, total=2)
    SimpleDbStore(client, sid).ensure()
    faulty = faults.FaultPlan(faults.parse_faults("sdb:*:for=2:ServiceUnavailable"))
    faulty.install(client)
    lines: list[str] = []
    writer = StatusWriter(SimpleDbStore(client, sid), lines.append, coalesce=0.3, retry_seconds=0.1)
    try:
        t0 = time.monotonic()
        for n in (1, 2):
            writer.submit(JobRecord(n, RUNNING))
            writer.submit(JobRecord(n, SAVING, returncode=0))
            writer.submit(JobRecord(n, FINISHED, returncode=0))
        assert time.monotonic() - t0 < 0.05
        assert writer.flush(timeout=30)
    finally:
        writer.stop()
    got = SimpleDbStore(client, sid).read_all()
    assert [(r.jobnr, r.status) for r in got] == [(1, FINISHED), (2, FINISHED)]
    assert writer.stats.writes == {1: 1, 2: 1}  # one write per job: the end record
    assert writer.stats.failed_calls >= 1
    assert writer.stats.requests_per_failed_call and all(
        n == 2 for n in writer.stats.requests_per_failed_call
    )
    assert any("write failed after" in line for line in lines)


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


def test_make_store_rejects_unknown_kinds() -> None:
    with pytest.raises(FormatError, match="dynamo"):
        make_store("dynamo", object(), BUCKET, SID)
