"""Fault scenarios of issue 9 on the local cloud, each ending with the audit (nothing lost or leaked)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from awsac_agent.sessionid import session_tag_filter

from .helpers import (
    LONG_JOB,
    RESULTS_JOB,
    audit,
    check,
    console,
    poll,
    poll_text,
    start,
    statuses,
    tar_member,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_results_upload_fails_twice_then_works(cli, session_dir, boto3_client) -> None:
    d = session_dir(faults="s3:PutObject:match=results_job_1:fail=2:InternalError")
    sid = start(cli, d)
    snap = audit(
        cli, boto3_client, sid, uploaded={"results_job_1.tar.bz2", "stdouterr_job_1.tar.bz2"}
    )
    assert statuses(snap) == ["finished"]
    plog = tar_member(boto3_client, sid, "processjobslog_LI_0.tar.bz2", "processjobs.log")
    assert plog.count("results_job_1.tar.bz2: attempt") == 2 and "InternalError" in plog


def test_status_store_throttled_longer_than_the_retries(
    cli, session_dir, boto3_client, local_cloud, client_faults, tmp_path: Path
) -> None:
    """Agent: every SimpleDB call after its first (the running records, one batch) fails for a
    window that outlasts botocore's retries of a call; client: Select throttled for some
    refreshes."""
    # The window lasts until the test has seen the jobs' end records fail (the file `over`
    # ends it; 120 s at most); with 2 attempts a call, a write fails whole within 2 s.
    over = tmp_path / "throttle-over"
    d = session_dir(
        store="simpledb",
        jobs="@SNAP@;a.sh;2\n",
        scripts={"a.sh": "#!/bin/sh\nsleep 1\n" + RESULTS_JOB.split("\n", 1)[1]},
        faults=f"sdb:*:skip=1:for=120:until={over}:RequestLimitExceeded",
        autorun_extra="export AWSAC_MAX_ATTEMPTS=2",
    )
    sid = start(cli, d)
    iid = poll(cli, sid, lambda s: s["jobs"][0]["instance_id"])["jobs"][0]["instance_id"]

    from awsac_tui.cloud import Cloud
    from awsac_tui.monitor import Monitor
    from awsac_tui.records import load_record

    async def client_side() -> list[Any]:
        client_faults("sdb:Select:skip=1:fail=3:RequestLimitExceeded")
        rec = load_record(sid)
        async with Cloud(rec.cloud) as cloud:
            mon = Monitor(rec, cloud)
            return [await mon.refresh() for _ in range(5)]

    snaps = asyncio.run(client_side())
    good, *throttled, again = snaps
    assert len(throttled) == 3
    for s in throttled:
        assert s.jobs == good.jobs and s.taken_at == good.taken_at  # the last good snapshot
        assert any(
            "status store unavailable" in n and "RequestLimitExceeded" in n for n in s.notices
        )
    assert not any("status store" in n for n in again.notices) and again.taken_at > good.taken_at

    def end_records_held() -> bool:
        text = console(boto3_client, iid)
        ends = [text.rfind(f"subprocess for job {n} ended") for n in (1, 2)]
        return min(ends) >= 0 and "write failed" in text[max(ends) :]

    wait_for(end_records_held, 60, "the jobs' end records to meet the throttling", every=0.5)
    over.touch()  # the throttling ends
    snap = audit(cli, boto3_client, sid, timeout=150)
    assert statuses(snap) == ["finished", "finished"]
    assert [j["returncode"] for j in snap["jobs"]] == [0, 0]
    plog = tar_member(boto3_client, sid, "processjobslog_LI_0.tar.bz2", "processjobs.log")
    assert "RequestLimitExceeded" in plog and "written after earlier failures" in plog


@pytest.mark.parametrize(
    "fault, says",
    [
        ("ec2:CreateVolume:fail=99:InternalError", "InternalError"),
        ("ec2:AttachVolume:fail=99:AccessDenied:status=403", "AccessDenied"),
    ],
)
def test_volume_that_never_comes_up(cli, session_dir, boto3_client, fault: str, says: str) -> None:
    # two requests per call: a retried InternalError is still retried, with less backoff to wait
    d = session_dir(
        jobs="@SNAP@;a.sh;1\n-;a.sh;1\n",
        faults=fault,
        autorun_extra="export AWSAC_MAX_ATTEMPTS=2",
    )
    sid = start(cli, d)
    snap = audit(cli, boto3_client, sid, uploaded={"results_job_2.tar.bz2"})
    first, second = snap["jobs"]
    assert first["status"] == "failed" and says in first["error"] and "snap-" in first["error"]
    assert second["status"] == "finished"


@pytest.mark.parametrize(
    "fault, store",
    [("agent:kill:step=run:after=1", "s3"), ("agent:interrupt:step=run:after=1", "simpledb")],
)
def test_agent_killed_or_instance_interrupted_mid_job(
    cli, session_dir, boto3_client, fault: str, store: str
) -> None:
    d = session_dir(
        jobs="@SNAP@;long.sh;2\n", scripts={"long.sh": LONG_JOB}, faults=fault, store=store
    )
    sid = start(cli, d)
    snap = audit(cli, boto3_client, sid)
    for j in snap["jobs"]:
        # the client marks them lost, or the agent's SIGTERM handler got to fail them first
        assert j["status"] in ("lost", "failed"), j
        assert j["instance_id"] in j["error"] or "signal" in j["error"] or "SIGTERM" in j["error"]
    assert any(j["status"] == "lost" for j in snap["jobs"]) or "interrupt" in fault
    rc, out, _ = cli(
        "cleanup", sid, "--yes", "--kind", "instances", "--kind", "volumes", "--kill-running"
    )
    assert rc == 0 and "removed nothing (nothing was left)" in out


def test_hanging_job_is_killed_with_reason_timeout(cli, session_dir, boto3_client) -> None:
    d = session_dir(
        jobs="@SNAP@;a.sh;2\n", faults="agent:hang:job=1", extra_toml="max_job_minutes = 0.05"
    )
    sid = start(cli, d)
    snap = audit(cli, boto3_client, sid, uploaded={"stdouterr_job_1.tar.bz2"})
    hung, other = snap["jobs"]
    assert hung["status"] == "killed" and hung["error"].startswith("timeout")
    assert other["status"] == "finished"
    log = tar_member(boto3_client, sid, "stdouterr_job_1.tar.bz2", "stdouterr_job_1.log")
    assert "hangs (injected)" in log


def test_agent_enforces_the_session_lease(cli, session_dir, boto3_client) -> None:
    # real time in the agent (its lease runs from its start), so short: 0.001 h = 3.6 s, and
    # a job without a volume, running within a second of the worker's start
    d = session_dir(
        jobs="-;long.sh;1\n",
        scripts={"long.sh": LONG_JOB},
        extra_toml="max_session_hours = 0.001",
    )
    sid = start(cli, d)
    snap = audit(cli, boto3_client, sid, timeout=90)
    (job,) = snap["jobs"]
    assert (
        job["status"] == "killed" and "lease" in job["error"] and job["error"].startswith("timeout")
    )


def test_silent_instance_is_flagged_then_swept_at_the_lease(
    cli, session_dir, boto3_client, local_cloud
) -> None:
    import sys
    from datetime import UTC, datetime, timedelta

    from awsac_tui.cloud import Cloud
    from awsac_tui.local import service
    from awsac_tui.local.common import default_boot_command
    from awsac_tui.monitor import Monitor
    from awsac_tui.records import load_record

    lease_h = 0.05  # 3 min: never reached in real time here; the client's clock is moved instead
    d = session_dir(jobs="-;a.sh;1\n", extra_toml=f"max_session_hours = {lease_h}")
    broken = [
        sys.executable,
        "-c",
        "import time; print('broken image: no agent', flush=True); time.sleep(600)",
    ]
    service.configure(local_cloud, boot_command=broken)
    try:
        sid = start(cli, d)
    finally:
        service.configure(local_cloud, boot_command=default_boot_command())
    out = poll_text(cli, sid, "SILENT", 60, "--boot-timeout", "1")
    (inst,) = check(cli, sid)["instances"]
    iid = inst["instance_id"]
    assert inst["state"] == "running"  # before its lease, the sweep leaves it alone
    assert f"notice: instance {iid} is running but no job has reported" in out
    assert f"awsac console {sid} {iid}" in out  # its console output, one command away
    rc, out, _ = cli("console", sid, iid)
    assert rc == 0 and "broken image: no agent" in out

    # The agent never ran, so only the client's sweep can end it, at the lease: a refresh whose
    # clock is past the lease (the instance's LaunchTime is EC2's, in real time).
    async def refresh_after_the_lease() -> list[str]:
        rec = load_record(sid)
        later = datetime.now(UTC) + timedelta(hours=lease_h, seconds=5)
        async with Cloud(rec.cloud) as cloud:
            snap = await Monitor(rec, cloud, clock=lambda: later).refresh()
        return list(snap.notices)

    notices = asyncio.run(refresh_after_the_lease())
    assert any(f"{iid} of {sid} outlived the session lease" in n for n in notices), notices
    snap = audit(cli, boto3_client, sid, uploaded={"sessionarchive.tar.bz2"})
    assert statuses(snap) == ["lost"]


def _stamp(console_text: str, needle: str) -> datetime:
    """The time of the agent's console line containing ``needle`` (``YY-MM-DD HH:MM:SS``)."""
    line = next(ln for ln in console_text.splitlines() if needle in ln)
    return datetime.strptime(line[:17], "%y-%m-%d %H:%M:%S")


def test_keep_instance_on_failure_then_terminates(cli, session_dir, boto3_client) -> None:
    # the job's snapshot never comes up as a volume: a failure of the session
    d = session_dir(
        faults="ec2:CreateVolume:fail=99:InternalError",
        autorun_extra="export AWSAC_MAX_ATTEMPTS=1",  # fail at once, no backoff to wait out
    )
    sid = start(cli, d, "--keep-instance-on-failure", "0.05")  # 3 s: the agent waits it out
    snap = audit(cli, boto3_client, sid)
    (job,) = snap["jobs"]
    assert job["status"] == "failed" and "InternalError" in job["error"], job
    text = console(boto3_client, snap["instances"][0]["instance_id"])
    # it really stayed up that long: the agent's own time stamps (1 s steps), not the test's
    kept = _stamp(text, "for debugging, then terminating")
    ended = _stamp(text, "instructing EC2 to terminate my instance")
    assert (ended - kept).total_seconds() >= 2, text


def _wait_record(sid_holder: dict[str, str], state_dir: Path) -> bool:
    recs = (
        list((state_dir / "sessions").glob("*.toml")) if (state_dir / "sessions").exists() else []
    )
    for r in recs:
        if 'state = "starting"' in r.read_text():
            sid_holder["sid"] = r.stem
            return True
    return False


def test_client_killed_during_start_before_run_instances(
    cli, session_dir, boto3_client, aws_env, local_cloud
) -> None:
    import os
    import signal
    import subprocess
    import sys

    from .helpers import ROOT, leftovers

    d = session_dir()
    held = d.parent / "faults.log"
    env = dict(os.environ, AWSAC_FAULTS="ec2:RunInstances:delay=120", AWSAC_FAULTS_LOG=str(held))
    env["PYTHONPATH"] = f"{ROOT}:{ROOT / 'agent'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "awsac_tui.cli", "start", str(d / "session.toml"), "--yes"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        holder: dict[str, str] = {}
        state = Path(aws_env.get("AWSAC_STATE_DIR") or local_cloud.state_dir)
        wait_for(lambda: _wait_record(holder, state), 60, "the record in starting")
        sid = holder["sid"]
        wait_for(lambda: leftovers(boto3_client, sid).objects, 60, "the archive upload")
        wait_for(
            lambda: held.is_file() and "ec2 RunInstances delay" in held.read_text(),
            60,
            "the client to be inside its (held) RunInstances",
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    rc, out, err = cli("check", sid)
    assert "did not finish and no instance was launched" in out + err
    assert f"awsac cleanup {sid}" in out + err
    snap = audit(cli, boto3_client, sid, cleanup=True, launched=False)
    assert snap["instances"] == [] and statuses(snap) == ["pending"]
    rc, out, _ = cli("list", "--json")
    import json

    assert {r["session_id"]: r["state"] for r in json.loads(out)}[sid] == "cleaned"


def test_start_interrupted_after_run_instances_and_retried_call_is_idempotent(
    cli, session_dir, boto3_client, aws_env
) -> None:
    """RunInstances reached the cloud but the client died: check adopts the instances; the
    retried RunInstances (same ClientToken) returns the same reservation, launching nothing."""
    from awsac_agent import s3layout

    from awsac_tui import records, session
    from awsac_tui.cloud import Cloud
    from awsac_tui.session.start import _check_bucket, _record_for, _run_args
    from awsac_tui.spec import load_spec

    d = session_dir(jobs="@SNAP@;a.sh;2\n")
    spec = load_spec(d / "session.toml")

    async def interrupted_start() -> tuple[str, dict[str, Any]]:
        async with Cloud(spec.cloud) as cloud:
            plan = await session.plan_start(d / "session.toml", cloud=cloud)
            records.save_record(_record_for(plan))  # written, then "killed" mid-call
            if not await _check_bucket(cloud, spec.bucket):
                await (await cloud.client("s3")).create_bucket(Bucket=spec.bucket)
            key = s3layout.archive_key(plan.session_id, plan.archive_name)
            await session.upload_file(cloud, plan.archive_path, spec.bucket, key)
            plan.discard()  # what start itself does at its end
            return plan.session_id, _run_args(plan)

    sid, args = asyncio.run(interrupted_start())
    ec2 = boto3_client("ec2")
    first = ec2.run_instances(**args)  # the call that reached the cloud
    rc, out, _ = cli("check", sid)
    assert "interrupted after RunInstances" in out
    assert records.load_record(sid).state == "running"
    again = ec2.run_instances(**args)  # the retry with the same ClientToken
    assert again["ReservationId"] == first["ReservationId"]
    filt = [session_tag_filter(sid)]
    reservations = ec2.describe_instances(Filters=filt)["Reservations"]
    assert len(reservations) == 1 and len(reservations[0]["Instances"]) == 1
    snap = audit(
        cli, boto3_client, sid, uploaded={"sessionarchive.tar.bz2", "results_job_1.tar.bz2"}
    )
    assert statuses(snap) == ["finished", "finished"]
