"""``awsac start`` of a queue-mode session (the client's part of issue 14 that the agent needs):
the plan caps the fleet, the user-data carries the queue fields, every job has a pending record
before an instance runs, and the real agents claim them all, each exactly once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from awsac_agent.status import FINISHED, PENDING
from awsac_agent.userdata import parse_userdata
from cloud_audit import leftovers_in
from polling import wait_for

from awsac_tui.records import load_record

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

FAST_AUTORUN = """#!/bin/sh
cd "$(dirname "$0")" || exit 1
export AWSAC_POLL_SECONDS=0.5 AWSAC_HEARTBEAT_SECONDS=1 AWSAC_STATUS_COALESCE_SECONDS=0.5
exec "${AWSAC_PYTHON:-python3}" awsac-processjobs.pyz "$@"
"""


@pytest.mark.parametrize("store", ["simpledb", "s3"])
def test_start_in_queue_mode_runs_every_job_once_on_the_capped_fleet(
    store: str, cli: Any, tmp_path: Path, local_cloud: Any, boto3_client: Any
) -> None:
    d = tmp_path / "job"
    d.mkdir()
    (d / "jobs.cfg").write_text("-;a.sh;12\n")
    (d / "a.sh").write_text('#!/bin/sh\necho "job $AWSAC_JOB_NUMBER attempt $AWSAC_JOB_ATTEMPT"\n')
    (d / "awsac_all_instances_autorun.sh").write_text(FAST_AUTORUN)
    (d / "session.toml").write_text(
        f'shortdescr = "queue"\ninstance_type = "c5.large"\nimage_id = "{local_cloud.image_id}"\n'
        f'bucket = "awsac-queue-tests"\nstatus_store = "{store}"\nassignment = "queue"\n'
        "max_instances = 2\nmax_attempts = 2\njob_minutes = 0.5\n\n[cloud]\nlocal = true\n"
    )
    rc, out, err = cli("start", str(d / "session.toml"), "--yes", "--json")
    assert rc == 0, err
    sid = json.loads(out)["session_id"]
    record = load_record(sid)
    ud = parse_userdata(record.runuserdata)
    assert ud is not None
    assert (ud.assignment, ud.max_attempts, ud.instances, ud.get("store")) == ("queue", 2, 2, store)
    ec2 = boto3_client("ec2")
    from awsac_agent.sessionid import session_tag_filter

    def instances() -> list[dict[str, Any]]:
        resp = ec2.describe_instances(Filters=[session_tag_filter(sid)])
        return [i for r in resp["Reservations"] for i in r["Instances"]]

    assert len(instances()) == 2  # c5.large has 2 vCPUs: 12 jobs would need 6 instances
    wait_for(
        lambda: all(i["State"]["Name"] == "terminated" for i in instances()),
        120,
        "the queue's instances to end themselves",
        every=0.5,
    )
    rc, out, _ = cli("check", sid, "--json")
    snap = json.loads(out)
    assert [(j["jobnr"], j["status"]) for j in snap["jobs"]] == [
        (n, FINISHED) for n in range(1, 13)
    ]
    assert {j["instance_id"] for j in snap["jobs"]} <= {i["InstanceId"] for i in instances()}
    left = leftovers_in(boto3_client, sid, "awsac-queue-tests")
    assert left.instances == [] and left.volumes == []
    rc, out, err = cli("cleanup", sid, "--yes", "--force")
    assert rc == 0, out + err


def test_start_pre_creates_pending_records(cli: Any, tmp_path: Path, local_cloud: Any) -> None:
    """Before any instance runs, every job of jobs.cfg has its pending record (attempt 1)."""
    import asyncio

    from awsac_agent.jobscfg import parse_jobs_cfg

    from awsac_tui.cloud import Cloud
    from awsac_tui.session.start import pending_records
    from awsac_tui.spec import CloudProfile
    from awsac_tui.store import open_store

    lines = parse_jobs_cfg("-;a.sh;30\nsnap-0123456789abcdef0;b.sh;2\n")
    records = pending_records(lines)
    assert [(r.jobnr, r.status, r.attempt, r.snapshot) for r in records[-3:]] == [
        (30, PENDING, 1, None),
        (31, PENDING, 1, "snap-0123456789abcdef0"),
        (32, PENDING, 1, "snap-0123456789abcdef0"),
    ]

    async def go(kind: str) -> list[Any]:
        async with Cloud(CloudProfile(local=True)) as cloud:
            s3 = await cloud.client("s3")
            try:
                await s3.create_bucket(Bucket="awsac-queue-tests")
            except Exception:  # noqa: BLE001 - there already
                pass
            store = open_store(
                kind, cloud, f"260101_1200--pend{kind[:2]}--beef", "awsac-queue-tests"
            )
            await store.reset()
            await store.put_pending(records)
            got = (await store.read()).records
            await store.delete_all()
            return got

    for kind in ("simpledb", "s3"):
        got = asyncio.run(go(kind))
        assert [(r.jobnr, r.status, r.shellscript) for r in got] == [
            (r.jobnr, PENDING, r.shellscript) for r in records
        ]
        assert all(r.updated for r in got)
