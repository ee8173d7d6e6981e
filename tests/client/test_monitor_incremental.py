"""The incremental refresh (issue 20): after a sequence of changes, the view it builds by applying
what changed equals a full read; it asks only for what can have changed; the clock-skew window.

The session is driven by hand on the local cloud: instances launched with the session tag (no
agent), records written as an agent writes them, a client clock that the test moves.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from awsac_agent.status import (
    FINISHED,
    LOST,
    RUNNING,
    WAITFORSAVE,
    JobRecord,
    domain_name,
)
from cloud_audit import leftovers_in

from awsac_tui.cloud import Cloud
from awsac_tui.monitor import Monitor
from awsac_tui.spec import CloudProfile
from awsac_tui.views import SessionSnapshot

from .monitor_helpers import (
    Clock,
    gone,
    job_volume,
    launch,
    put_record,
    session_record,
    terminate_all,
    wait_for,
)

SID = "260101_1200--incr--beef"
BUCKET = "awsac-incremental"
OVERLAP = 10.0


def _value(snap: SessionSnapshot) -> tuple:
    return snap.jobs, snap.instances, snap.volumes


def _key(v: Any) -> str:
    for name in ("jobnr", "volume_id", "instance_id"):
        if hasattr(v, name):
            return str(getattr(v, name))
    return repr(v)


def _diff(a: SessionSnapshot, b: SessionSnapshot) -> str:
    """The rows that differ (incremental, full), for the assertion message."""
    out = []
    for name in ("jobs", "instances", "volumes"):
        x, y = getattr(a, name), getattr(b, name)
        keys = {_key(v): v for v in x}
        other = {_key(v): v for v in y}
        for k in sorted(keys.keys() | other.keys()):
            if keys.get(k) != other.get(k):
                out.append(
                    f"{name} {k}:\n  incremental {keys.get(k)}\n  full        {other.get(k)}"
                )
    return "\n".join(out)


class Calls:
    """Counts API calls per operation on the Cloud's clients (botocore's before-call event)."""

    def __init__(self) -> None:
        self.ops: dict[str, int] = {}

    def __call__(self, model: Any = None, **_: Any) -> None:
        self.ops[model.name] = self.ops.get(model.name, 0) + 1

    async def install(self, cloud: Cloud) -> None:
        for service in ("ec2", "sdb", "s3"):
            (await cloud.client(service)).meta.events.register("before-call", self)

    def take(self) -> dict[str, int]:
        out, self.ops = self.ops, {}
        return out


@pytest.fixture
def session(aws_env: dict[str, str], local_cloud: Any, boto3_client: Callable[[str], Any]):
    boto3_client("s3").create_bucket(Bucket=BUCKET)
    sdb = boto3_client("sdb")
    sdb.create_domain(DomainName=domain_name(SID))
    yield sdb
    terminate_all(boto3_client, SID)
    sdb.delete_domain(DomainName=domain_name(SID))
    left = leftovers_in(boto3_client, SID, BUCKET)
    assert (left.instances, left.volumes) == ([], [])


async def test_incremental_view_equals_a_full_read(
    session: Any, local_cloud: Any, boto3_client: Callable[[str], Any]
) -> None:
    sdb = session
    ec2 = boto3_client("ec2")
    clock = Clock()
    t0 = clock.now
    record = session_record(SID, BUCKET, n_jobs=6, cpi=2, created=t0)
    ids = launch(boto3_client, local_cloud, SID, 3)
    vol0 = job_volume(ec2, SID, ids[0])

    async with Cloud(CloudProfile(local=True)) as cloud:
        inc = Monitor(record, cloud, full_every=1000, overlap=OVERLAP, clock=clock)
        calls = Calls()
        await calls.install(cloud)

        inc_calls: list[dict[str, int]] = []

        async def check(label: str) -> SessionSnapshot:
            calls.take()
            got = await inc.refresh()
            inc_calls.append(calls.take())
            full = await Monitor(record, cloud, write_lost=False, clock=clock).refresh()
            assert _value(got) == _value(full), f"{label}\n{_diff(got, full)}"
            return got

        first = await check("first refresh (a full read)")
        assert [j.status for j in first.jobs] == ["pending"] * 6
        assert first.changes.full

        # 1. two jobs start
        def run(n: int, at: float, **kw: Any) -> JobRecord:
            li = (n - 1) // 2
            return JobRecord(
                n,
                kw.pop("status", RUNNING),
                instance_id=ids[li],
                launchindex=li,
                shellscript="work.sh",
                runstarttime=(t0 + timedelta(seconds=at)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                **kw,
            )

        put_record(sdb, SID, run(1, 1), t0 + timedelta(seconds=1))
        put_record(sdb, SID, run(3, 1), t0 + timedelta(seconds=1))
        clock.advance(5)
        snap = await check("two jobs started")
        assert snap.changes.jobs == {1, 3} and not snap.changes.full
        # steady state: 3 calls (instances not running, volumes not in use, records since)
        assert inc_calls[-1] == {"DescribeInstances": 1, "DescribeVolumes": 1, "Select": 1}

        # 2. job 1 changes twice between ticks; an agent whose clock is behind writes job 2
        #    exactly at the window's edge (mark - overlap): still read
        put_record(sdb, SID, run(1, 1, status=WAITFORSAVE), t0 + timedelta(seconds=6))
        put_record(sdb, SID, run(1, 1, status=FINISHED, returncode=0), t0 + timedelta(seconds=7))
        edge = inc._since()
        put_record(sdb, SID, run(2, 2), edge)
        clock.advance(5)
        snap = await check("twice changed job, skewed writer at the edge")
        by = {j.jobnr: j for j in snap.jobs}
        assert (by[1].status, by[1].returncode, by[2].status) == (FINISHED, 0, RUNNING)
        assert snap.changes.jobs == {1, 2}

        # 3. a writer skewed past the window is missed by the increments ...
        late = inc._since() - timedelta(seconds=1)
        put_record(sdb, SID, run(4, 3), late)
        clock.advance(5)
        missed = await inc.refresh()
        assert {j.jobnr: j.status for j in missed.jobs}[4] == "pending"
        # ... and caught by the next full read (every full_every refreshes; forced here)
        inc.force_full()
        await check("full read after a skewed writer")

        # 4. the instance of job 3 is terminated from outside (its root volume goes with it);
        #    the jobs of LI 0 have ended and its agent tears its job volume down
        ec2.terminate_instances(InstanceIds=[ids[1]])
        put_record(sdb, SID, run(2, 2, status=FINISHED, returncode=0), clock.now)
        ec2.detach_volume(VolumeId=vol0, Force=True)
        ec2.delete_volume(VolumeId=vol0)
        # shutting-down -> terminated takes a moment in real time: the two reads compared must
        # not straddle that step
        wait_for(lambda: gone(ec2, [ids[1]]), "instance terminated")
        clock.advance(5)
        snap = await check("instance terminated, volume deleted")
        job3 = {j.jobnr: j for j in snap.jobs}[3]
        assert job3.status == LOST and ids[1] in job3.error
        assert "terminated from outside" in job3.error and "state reason:" in job3.error
        assert job3.runendtime is not None  # its run time stops when the instance went
        assert vol0 not in {v.volume_id for v in snap.volumes}

        # 5. a new instance (a retry's reservation) that a job record names
        new = launch(boto3_client, local_cloud, SID, 1)[0]
        put_record(
            sdb,
            SID,
            JobRecord(
                5,
                RUNNING,
                instance_id=new,
                launchindex=0,
                shellscript="work.sh",
                attempt=2,
            ),
            clock.now,
        )
        clock.advance(5)
        snap = await check("new instance named by a record")
        assert new in {i.instance_id for i in snap.instances}

        # 6. nothing changed: no row changes, the same job tuple
        clock.advance(5)
        again = await check("nothing changed")
        assert again.changes.empty and again.jobs is snap.jobs
