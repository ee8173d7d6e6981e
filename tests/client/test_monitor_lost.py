"""Lost work, client side (issue 13): a job whose instance went away under it, or whose agent
went silent on a running instance, is `lost` with the cause in user words; a silent agent's
instance is terminated once; a lost job's run time stops when its instance went."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from awsac_agent import s3layout
from awsac_agent.status import LOST, PENDING, RUNNING, Heartbeat, JobRecord, domain_name
from cloud_audit import leftovers_in

from awsac_tui.cloud import Cloud
from awsac_tui.monitor import Monitor, MonitorPool
from awsac_tui.spec import CloudProfile
from awsac_tui.store import open_store

from .conftest import write_example
from .monitor_helpers import Clock, launch, put_record, session_record, terminate_all

SID = "260101_1200--lost--cafe"
BUCKET = "awsac-monitor-lost"


@pytest.fixture
def session(aws_env: dict[str, str], boto3_client: Callable[[str], Any]):
    boto3_client("s3").create_bucket(Bucket=BUCKET)
    sdb = boto3_client("sdb")
    sdb.create_domain(DomainName=domain_name(SID))
    yield sdb
    terminate_all(boto3_client, SID)
    sdb.delete_domain(DomainName=domain_name(SID))
    s3 = boto3_client("s3")
    for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{SID}/").get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    left = leftovers_in(boto3_client, SID, BUCKET)
    assert left == type(left)([], [], [])


def _beat(s3: Any, iid: str, interval: float, beat: int = 1) -> None:
    hb = Heartbeat(iid, 0, "2026-01-01T00:00:00.000Z", interval, jobs=(1,), beat=beat)
    s3.put_object(Bucket=BUCKET, Key=s3layout.heartbeat_key(SID, iid), Body=hb.to_json().encode())


@pytest.mark.parametrize("apart", [False, True], ids=["in-refresh", "own-timer"])
async def test_a_silent_agent_loses_its_jobs_and_its_instance_once(
    session: Any, local_cloud: Any, boto3_client: Callable[[str], Any], apart: bool
) -> None:
    """Heartbeats listed by the refresh (headless check), or apart from it by the owner's timer
    (``MonitorPool``, the TUI): then no refresh after the first lists them."""
    sdb, s3, ec2 = session, boto3_client("s3"), boto3_client("ec2")
    clock = Clock()
    record = session_record(SID, BUCKET, n_jobs=4, cpi=2, created=clock.now)
    quiet, busy = launch(boto3_client, local_cloud, SID, 2)
    for n, iid, li in ((1, quiet, 0), (3, busy, 1)):
        put_record(sdb, SID, JobRecord(n, RUNNING, instance_id=iid, launchindex=li), clock.now)
    terminations: list[list[str]] = []

    async with Cloud(CloudProfile(local=True)) as cloud:
        (await cloud.client("ec2")).meta.events.register(
            "provide-client-params.ec2.TerminateInstances",
            lambda params=None, **_: terminations.append(params["InstanceIds"]),
        )
        listings: list[str] = []
        (await cloud.client("s3")).meta.events.register(
            "provide-client-params.s3.ListObjectsV2",
            lambda params=None, **_: listings.append(params["Prefix"]),
        )
        mon = Monitor(
            record,
            cloud,
            heartbeat_interval=1.0,
            missed_beats=2,
            heartbeat_every=0,
            clock=clock,
            heartbeats_apart=apart,
        )
        _beat(s3, quiet, 1.0)
        snap = await mon.refresh()  # the beat is fresh: nothing is lost
        assert len(listings) == 1  # the first refresh lists them in both modes
        assert {j.jobnr: j.status for j in snap.jobs} == {
            1: RUNNING,
            2: PENDING,
            3: RUNNING,
            4: PENDING,
        }
        deadline = time.monotonic() + 20
        while {j.jobnr: j.status for j in snap.jobs}[1] != LOST:  # S3 times have 1 s steps
            assert time.monotonic() < deadline, snap
            time.sleep(0.5)
            _beat(s3, busy, 1.0)  # the other agent keeps beating
            if apart:
                await mon.poll_heartbeats()
                polled = len(listings)
            snap = await mon.refresh()
            if apart:
                assert len(listings) == polled, "a refresh listed the heartbeats"
        jobs = {j.jobnr: j for j in snap.jobs}
        for n in (1, 2):  # its running job and the one it would have run next
            assert jobs[n].status == LOST
            assert jobs[n].error.startswith("agent silent for ")
            assert jobs[n].error.endswith(f"s on a running instance ({quiet})")
        assert jobs[1].runendtime is not None  # the run time stops at the last beat
        assert (jobs[3].status, jobs[4].status) == (RUNNING, PENDING)
        assert any(quiet in n and "silent" in n for n in snap.notices)
        assert terminations == [[quiet]]
        stored = {r.jobnr: r for r in await open_store("simpledb", cloud, SID, BUCKET).read_all()}
        assert stored[1].status == LOST and stored[2].status == LOST
        assert stored[3].status == RUNNING
        for _ in range(2):  # idempotent: nothing is terminated or written again
            await mon.refresh()
        assert terminations == [[quiet]]
    state = ec2.describe_instances(InstanceIds=[quiet])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] in ("shutting-down", "terminated")


async def test_the_pools_own_timer_finds_a_silent_agent(
    session: Any, local_cloud: Any, boto3_client: Callable[[str], Any]
) -> None:
    """The TUI's MonitorPool lists heartbeats on a timer apart from its refreshes."""
    sdb, s3 = session, boto3_client("s3")
    now = datetime.now(UTC)
    record = session_record(SID, BUCKET, n_jobs=2, cpi=2, created=now)
    (quiet,) = launch(boto3_client, local_cloud, SID, 1)
    put_record(sdb, SID, JobRecord(1, RUNNING, instance_id=quiet, launchindex=0), now)
    _beat(s3, quiet, 1.0)
    pool = MonitorPool(heartbeat_interval=1.0, missed_beats=2, heartbeat_every=0.5)
    try:
        snap = await pool.refresh(record)
        assert {j.jobnr: j.status for j in snap.jobs}[1] == RUNNING
        deadline = time.monotonic() + 30
        while {j.jobnr: j.status for j in snap.jobs}[1] != LOST:  # no beat after the first
            assert time.monotonic() < deadline, snap
            await asyncio.sleep(0.5)
            snap = await pool.refresh(record)
        job = {j.jobnr: j for j in snap.jobs}[1]
        assert job.error.startswith("agent silent for "), job.error
    finally:
        await pool.aclose()


def _kill_agent(state_dir: str, instance_id: str) -> None:
    """SIGKILL everything the instance runs but its init: an agent that dies without a word."""
    info = json.loads(
        (Path(state_dir) / "local" / "instances" / instance_id / "instance.json").read_text()
    )
    init = int(info["pid"])
    parents: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            parents[int(proc.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    todo, seen = [init], []
    while todo:
        pid = todo.pop()
        kids = [p for p, pp in parents.items() if pp == pid]
        seen += kids
        todo += kids
    for pid in seen:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.slow
@pytest.mark.e2e
def test_instance_terminated_from_outside_makes_its_job_lost_within_15_s(
    cli, local_cloud: Any, release_snapshot: str, tmp_path: Path, boto3_client
) -> None:
    job = write_example(
        tmp_path / "long", local_cloud, release_snapshot, store="simpledb", jobs="-;long.sh;1\n"
    )
    (job / "long.sh").write_text("#!/bin/sh\necho long job\nwhile true; do sleep 1; done\n")
    rc, out, err = cli("start", str(job / "session.toml"), "--yes", "--json")
    assert rc == 0, err
    sid = json.loads(out)["session_id"]

    def snapshot() -> dict[str, Any]:
        rc, out, err = cli("check", sid, "--json")
        assert rc in (0, 1), err
        return json.loads(out)

    deadline = time.monotonic() + 120
    while (snap := snapshot())["jobs"][0]["status"] != RUNNING:
        assert time.monotonic() < deadline, snap
        time.sleep(0.5)
    iid = snap["jobs"][0]["instance_id"]
    # the agent dies without a word (no SIGTERM handler runs), then someone terminates the
    # instance with plain boto3: the status store still says running
    _kill_agent(local_cloud.state_dir, iid)
    boto3_client("ec2").terminate_instances(InstanceIds=[iid])
    t0 = time.monotonic()
    while (snap := snapshot())["jobs"][0]["status"] != LOST:
        assert time.monotonic() - t0 < 15, snap
        time.sleep(0.5)
    error = snap["jobs"][0]["error"]
    assert f"instance {iid} terminated from outside while the job ran" in error
    assert "state reason: Client.UserInitiatedShutdown" in error
    assert snap["jobs"][0]["runendtime"] is not None
    # written back: the status store itself says lost
    item = boto3_client("sdb").get_attributes(DomainName=sid, ItemName="job1", ConsistentRead=True)
    assert {a["Name"]: a["Value"] for a in item["Attributes"]}["status"] == LOST
    rc, _, err = cli("cleanup", sid, "--yes", "--force")
    assert rc == 0, err
    left = leftovers_in(boto3_client, sid, "atlassessions")
    assert (left.instances, left.volumes, left.objects) == ([], [], [])
