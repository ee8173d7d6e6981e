"""Lost work comes back (`awsac retry`, `check --watch --retry`) and a session fits the account
(quota read first, capacity refusals, fallback types, queue mode launching what it can): the
real client and agent on the local cloud, each test ending with the leak audit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloud_audit import leftovers_in
from faults.helpers import console
from polling import wait_for

from .conftest import write_example

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

BUCKET = "atlassessions"
# attempt 1 runs long (the test takes its instance away); later attempts end at once
FLAKY_JOB = """#!/bin/sh
echo "attempt $AWSAC_JOB_ATTEMPT of job $AWSAC_JOB_NUMBER"
if [ "$AWSAC_JOB_ATTEMPT" = 1 ]; then echo "partial output of attempt 1"; sleep 120; fi
echo "attempt $AWSAC_JOB_ATTEMPT done"
"""
ALWAYS_LONG = """#!/bin/sh
echo "attempt $AWSAC_JOB_ATTEMPT of job $AWSAC_JOB_NUMBER"
sleep 120
"""
QUICK = "#!/bin/sh\necho quick job $AWSAC_JOB_NUMBER\n"


@pytest.fixture
def ec2_limits(local_cloud: Any) -> Iterator[Any]:
    """Set the local cloud's account limits for one test; lifted again afterwards."""
    from awsac_tui.local import service

    def set_limits(**settings: Any) -> None:
        service.configure_ec2(local_cloud, **settings)

    yield set_limits
    service.configure_ec2(local_cloud, vcpu_quota=None, instance_limit=None, capacity={})


def job_dir(
    tmp_path: Path, info: Any, script: str, count: int, *, fast: bool = False, **spec: Any
) -> Path:
    """A job directory of ``count`` jobs of ``script`` (no snapshot), spec keys added; ``fast``:
    the tests' autorun, whose agent reads its control objects every 0.5 s (see write_example)."""
    d = write_example(
        tmp_path / "jobs", info, "-", store="s3", jobs=f"-;job.sh;{count}\n", fast=fast
    )
    (d / "job.sh").write_text(script)
    text = (d / "session.toml").read_text()
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in spec.items())
    # top-level keys go before the first table
    head, sep, rest = text.partition("\n[")
    (d / "session.toml").write_text(head + "\n" + extra + sep + rest)
    return d


def audit(boto3_client: Any, sid: str) -> None:
    # `check --watch` returns when the jobs have ended; the agent then uploads its own log and
    # terminates its instance, which takes a moment more
    left = wait_for(
        lambda: (found := leftovers_in(boto3_client, sid, BUCKET)).instances == [] and found,
        30,
        f"the instances of {sid} to end themselves",
    )
    assert (left.instances, left.volumes, left.uploads) == ([], [], []), left


def check(cli: Any, sid: str) -> dict[str, Any]:
    rc, out, err = cli("check", sid, "--json")
    assert rc in (0, 1), err
    return json.loads(out)


def job(snap: dict[str, Any], nr: int) -> dict[str, Any]:
    return next(j for j in snap["jobs"] if j["jobnr"] == nr)


def test_start_over_the_vcpu_quota_is_exit_2_with_the_numbers_and_creates_nothing(
    cli, tmp_path: Path, local_cloud: Any, boto3_client, ec2_limits
) -> None:
    ec2_limits(vcpu_quota=2)
    d = write_example(tmp_path / "eventgen", local_cloud, "-", store="s3", jobs="-;gen_30.sh;4\n")
    before = {p.name for p in (Path(local_cloud.state_dir) / "sessions").glob("*.toml")}
    rc, out, err = cli("start", str(d / "session.toml"), "--yes")
    assert rc == 2, (out, err)
    assert "2 x c5.large (4 vCPUs)" in err and "allows 2 vCPUs" in err, err
    assert "Service Quotas L-1216C47A" in err and 'assignment = "queue"' in err, err
    after = {p.name for p in (Path(local_cloud.state_dir) / "sessions").glob("*.toml")}
    assert after == before  # no record
    s3 = boto3_client("s3")
    ec2 = boto3_client("ec2")
    live = [
        i
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] in ("pending", "running")
    ]
    assert live == []
    buckets = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    names = (
        [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
        if BUCKET in buckets
        else []
    )
    assert not [k for k in names if "--eventgen--" in k]


def test_no_capacity_for_the_type_falls_back_to_the_next_and_the_session_finishes(
    cli, tmp_path: Path, local_cloud: Any, boto3_client, ec2_limits
) -> None:
    ec2_limits(capacity={"c5.large": 0})
    d = job_dir(tmp_path, local_cloud, QUICK, 2, instance_types=["m5.large"])
    rc, out, err = cli("start", str(d / "session.toml"), "--yes", "--json")
    assert rc == 0, err
    sid = json.loads(out)["session_id"]
    rc, out, err = cli("check", sid, "--watch", "--interval", "0.3")
    assert rc == 0, out + err
    snap = check(cli, sid)
    assert {j["status"] for j in snap["jobs"]} == {"finished"}
    assert {i["instance_type"] for i in snap["instances"]} == {"m5.large"}
    rc, out, err = cli("list", "--json")
    assert any(r["session_id"] == sid and r["instance_type"] == "m5.large" for r in json.loads(out))
    audit(boto3_client, sid)


def test_queue_mode_launches_what_capacity_allows_and_every_job_finishes(
    cli, tmp_path: Path, local_cloud: Any, boto3_client, ec2_limits
) -> None:
    ec2_limits(capacity={"c5.large": 2})
    d = job_dir(tmp_path, local_cloud, QUICK, 8, assignment="queue", max_instances=4)
    rc, out, err = cli("start", str(d / "session.toml"), "--yes")
    assert rc == 0, err
    assert "launched 2 of 4 instance(s) of c5.large (capacity)" in out + err
    sid = next(r for r in json.loads(cli("list", "--json")[1]) if r["n_jobs"] == 8)["session_id"]
    rc, out, err = cli("check", sid, "--watch", "--interval", "0.3")
    assert rc == 0, out + err
    snap = check(cli, sid)
    assert [j["status"] for j in snap["jobs"]] == ["finished"] * 8
    assert len({j["instance_id"] for j in snap["jobs"]}) <= 2
    assert len(snap["instances"]) == 2
    audit(boto3_client, sid)


def _terminate_running(boto3_client: Any, cli: Any, sid: str, nr: int, attempt: int) -> str:
    """Wait until job ``nr`` runs as ``attempt``, then terminate its instance from outside."""
    snap = wait_for(
        lambda: (
            (s := check(cli, sid))
            and job(s, nr)["status"] == "running"
            and job(s, nr).get("attempt", 1) == attempt
            and s
        ),
        60,
        f"job {nr} running as attempt {attempt}",
    )
    iid = job(snap, nr)["instance_id"]
    boto3_client("ec2").terminate_instances(InstanceIds=[iid])
    return iid


def test_retry_runs_the_lost_job_again_on_a_new_instance_and_keeps_attempt_1s_log(
    cli, tmp_path: Path, local_cloud: Any, boto3_client
) -> None:
    d = job_dir(tmp_path, local_cloud, FLAKY_JOB, 1)
    rc, out, err = cli("start", str(d / "session.toml"), "--yes", "--json")
    assert rc == 0, err
    sid = json.loads(out)["session_id"]
    iid = _terminate_running(boto3_client, cli, sid, 1, 1)
    lost = wait_for(
        lambda: (s := check(cli, sid)) and job(s, 1)["status"] == "lost" and job(s, 1), 60, "lost"
    )
    assert iid in lost["error"] and "terminated" in lost["error"]
    rc, out, err = cli("retry", sid, "--json")
    assert rc == 0, err
    retried = json.loads(out)
    assert retried["jobs"] == [1] and len(retried["instance_ids"]) == 1
    assert retried["instance_ids"][0] != iid
    rc, out, err = cli("check", sid, "--watch", "--interval", "0.3")
    assert rc == 0, out + err
    final = job(check(cli, sid), 1)
    assert (final["status"], final["attempt"]) == ("finished", 2)
    assert final["instance_id"] == retried["instance_ids"][0]
    keys = {
        o["Key"].split("/", 1)[1]
        for o in boto3_client("s3").list_objects_v2(Bucket=BUCKET, Prefix=sid)["Contents"]
    }
    assert {
        "attempts/job_1/1/stdouterr_job_1.tar.bz2",
        "attempts/job_1/2/stdouterr_job_1.tar.bz2",
    } <= keys, console(boto3_client, iid)
    # nothing left to retry: exit 1 and says so
    rc, out, err = cli("retry", sid)
    assert rc == 1 and "no job to retry" in out
    audit(boto3_client, sid)


def test_watch_with_retry_stops_after_max_attempts_and_lists_both_causes(
    tmp_path: Path, local_cloud: Any, boto3_client, cli, aws_env: dict[str, str]
) -> None:
    d = job_dir(tmp_path, local_cloud, ALWAYS_LONG, 1, max_attempts=2)
    rc, out, err = cli("start", str(d / "session.toml"), "--yes", "--json")
    assert rc == 0, err
    sid = json.loads(out)["session_id"]
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        **aws_env,
        "PYTHONPATH": os.pathsep.join([str(root), str(root / "agent")]),
    }
    watch = subprocess.Popen(
        [sys.executable, "-m", "awsac_tui.cli", "check", sid, "--watch", "--retry"]
        + ["--interval", "0.3"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = _terminate_running(boto3_client, cli, sid, 1, 1)
        second = _terminate_running(boto3_client, cli, sid, 1, 2)
        output, _ = watch.communicate(timeout=90)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.communicate()
    assert watch.returncode == 1, output  # a job did not finish
    assert "retrying job(s) 1" in output
    final = job(check(cli, sid), 1)
    assert (final["status"], final["attempt"]) == ("lost", 2)
    assert second in final["error"]
    (earlier,) = final["history"]
    assert earlier["attempt"] == 1 and first in earlier["error"]
    rc, out, err = cli("retry", sid)
    assert rc == 1 and "max_attempts = 2" in out
    audit(boto3_client, sid)


PRINTING_JOB = """#!/bin/sh
i=0
while [ $i -lt 100 ]; do echo "line $i of a running job"; i=$((i+1)); sleep 0.3; done
"""


def test_logs_of_a_running_job_ask_the_agent_for_its_live_tail(
    cli, tmp_path: Path, local_cloud: Any, boto3_client
) -> None:
    """The agent uploads live/job_N.log only while a viewer sets the watch flag: `awsac logs`
    sets it, and the tail appears while the job runs (at the agent's next control read: every
    0.5 s here, not the shipped 5 s this test would wait out)."""
    d = job_dir(tmp_path, local_cloud, PRINTING_JOB, 1, fast=True)
    rc, out, err = cli("start", str(d / "session.toml"), "--yes", "--json")
    assert rc == 0, err
    sid = json.loads(out)["session_id"]
    wait_for(lambda: job(check(cli, sid), 1)["status"] == "running", 60, "job 1 running")
    keys = lambda: {  # noqa: E731
        o["Key"].split("/", 1)[1]
        for o in boto3_client("s3").list_objects_v2(Bucket=BUCKET, Prefix=sid).get("Contents", [])
    }
    assert "control/watch_job_1" not in keys()
    text = wait_for(
        lambda: (r := cli("logs", sid, "1")) and "line" in r[1] and r[1],
        40,
        "a live tail",
        every=0.3,
    )
    assert "of a running job" in text
    assert "control/watch_job_1" in keys()
    boto3_client("ec2").terminate_instances(
        InstanceIds=[i["instance_id"] for i in check(cli, sid)["instances"]]
    )
    wait_for(lambda: job(check(cli, sid), 1)["status"] == "lost", 30, "job 1 lost")
    rc, out, err = cli("cleanup", sid, "--yes", "--force")
    assert rc == 0, out + err
    audit(boto3_client, sid)
