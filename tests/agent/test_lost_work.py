"""Lost work comes back (issue 13, agent side), on the local cloud with the real agent: a
termination from outside and a spot notice make running jobs ``lost`` with their cause and keep
their partial logs; a retry reservation runs them again as attempt 2; a store outage delays
records but never a kill. Each test ends with the leak audit."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from agent_e2e_helpers import start_session
from agent_fake_imds import serve
from awsac_agent import s3layout
from awsac_agent.status import FINISHED, KILLED, LOST, RUNNING, history_of
from cloud_audit import leftovers_in
from polling import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

# attempt 1 prints, then hangs until the instance goes; attempt 2 finishes at once
FLAKY_JOB = """#!/bin/sh
echo "partial output of attempt $AWSAC_JOB_ATTEMPT"
if [ "$AWSAC_JOB_ATTEMPT" = 1 ]; then sleep 300; fi
echo "attempt $AWSAC_JOB_ATTEMPT done"
"""
QUICK_JOB = "#!/bin/sh\necho quick\n"


def _audit(boto3_client: Any, sess: Any) -> None:
    """Nothing of the session left running: no instance, no volume."""
    left = leftovers_in(boto3_client, sess.session_id, sess.bucket)
    assert left.instances == [] and left.volumes == [], left


def _status(sess: Any, jobnr: int) -> str | None:
    try:
        rec = sess.store().get(jobnr)
    except Exception:  # noqa: BLE001 - no domain yet
        return None
    return rec.status if rec else None


@pytest.mark.parametrize("store", ["simpledb", "s3"])
def test_termination_from_outside_loses_the_job_then_a_retry_runs_attempt_2(
    store: str, tmp_path: Path, local_cloud: Any, boto3_client: Any
) -> None:
    jobs = "-;quick.sh;1\n-;flaky.sh;1\n-;quick.sh;1\n"
    sess = start_session(
        tmp_path,
        boto3_client,
        local_cloud.image_id,
        jobs,
        {"quick.sh": QUICK_JOB, "flaky.sh": FLAKY_JOB},
        n_instances=1,
        cores=3,
        store=store,
        autorun_extra="",
        pending=True,
    )
    wait_for(lambda: _status(sess, 2) == RUNNING, 60, "job 2 running")
    wait_for(lambda: _status(sess, 1) == FINISHED and _status(sess, 3) == FINISHED, 30, "1 and 3")
    iid = sess.instance_ids[0]
    # plain boto3, as a user at the console would
    t0 = time.monotonic()
    sess.ec2.terminate_instances(InstanceIds=[iid])
    wait_for(lambda: _status(sess, 2) == LOST, 15, "job 2 lost")
    lost_after = time.monotonic() - t0
    sess.wait_terminated(timeout=30)
    lost = sess.record(2)
    assert lost.error == f"instance {iid} terminated from outside while the job ran"
    assert lost.attempt == 1 and lost.runendtime and lost_after < 15
    # the partial log went up before the instance did, under its attempt and the paper's name
    partial = sess.tar_member("attempts/job_2/1/stdouterr_job_2.tar.bz2", "stdouterr_job_2.log")
    assert "partial output of attempt 1" in partial
    assert "partial output of attempt 1" in sess.tar_member(
        "stdouterr_job_2.tar.bz2", "stdouterr_job_2.log"
    )
    _audit(boto3_client, sess)

    # the client's retry: job 2 back to pending as attempt 2, a new reservation naming it
    again = sess.store().requeue(lost)
    assert (again.attempt, again.status) == (2, "pending")
    retry = start_session(
        tmp_path,
        boto3_client,
        local_cloud.image_id,
        jobs,
        {},
        n_instances=1,
        cores=3,
        store=store,
        session_id=sess.session_id,
        extra_userdata={"jobs": "2", "reservation": "2"},
    )
    retry.wait_terminated(timeout=90)
    final = retry.record(2)
    assert (final.status, final.attempt, final.returncode) == (FINISHED, 2, 0)
    assert final.instance_id == retry.instance_ids[0]
    (first,) = history_of(final)
    assert (first["attempt"], first["status"], first["instance_id"]) == (1, LOST, iid)
    assert "terminated from outside" in first["error"]
    # jobs 1 and 3 were not run again
    assert [(r.jobnr, r.attempt) for r in retry.records if r.jobnr != 2] == [(1, 1), (3, 1)]
    # every attempt kept; the paper's name holds the last one
    keys = retry.keys()
    assert {
        "attempts/job_2/1/stdouterr_job_2.tar.bz2",
        "attempts/job_2/2/stdouterr_job_2.tar.bz2",
    } <= keys
    assert "attempt 2 done" in retry.tar_member("stdouterr_job_2.tar.bz2", "stdouterr_job_2.log")
    assert "partial output of attempt 1" in retry.tar_member(
        "attempts/job_2/1/stdouterr_job_2.tar.bz2", "stdouterr_job_2.log"
    )
    plog = retry.tar_member("reservations/2/processjobslog_LI_0.tar.bz2", "processjobs.log")
    assert "my job numbers are: [2]" in plog and "claimed job 2 (attempt 2)" in plog
    _audit(boto3_client, retry)


LONG_JOB = "#!/bin/sh\necho long job started\nsleep 300\n"
SHORT_JOB = "#!/bin/sh\nsleep 1\necho short job done\n"


def test_store_outage_delays_records_but_never_a_kill(
    tmp_path: Path, local_cloud: Any, boto3_client: Any
) -> None:
    """SimpleDB answers 503 to every request until the test ends the outage (an HTTP answer:
    botocore's retries see it): a kill request sent during the outage ends its job within 10 s,
    each failed write sent at most AWSAC_MAX_ATTEMPTS=3 requests, and the records arrive once
    the store is back."""
    # the first write (running) goes through; the outage then lasts until the file `over`
    # exists (at most 120 s): the test ends it once the kill was seen and done inside it
    over = tmp_path / "outage-over"
    faults = f"sdb:*:skip=1:for=120:until={over}:ServiceUnavailable"
    sess = start_session(
        tmp_path,
        boto3_client,
        local_cloud.image_id,
        "-;long.sh;1\n-;short.sh;1\n",
        {"long.sh": LONG_JOB, "short.sh": SHORT_JOB},
        n_instances=1,
        cores=2,
        store="simpledb",
        autorun_extra=f"export AWSAC_MAX_ATTEMPTS=3 AWSAC_FAULTS='{faults}'",
        pending=True,
    )
    iid = sess.instance_ids[0]
    wait_for(lambda: _status(sess, 1) == RUNNING, 60, "job 1 running")
    # job 2's end record is the first write to meet the outage
    wait_for(lambda: "write failed after" in sess.console(iid), 30, "the outage to begin")
    sess.kill(1)  # the client's kill: the SimpleDB attribute and its control/ mirror
    t_kill = time.monotonic()
    wait_for(
        lambda: "subprocess for job 1 ended" in sess.console(iid),
        10,
        "job 1 to end after the kill request",
        every=0.2,
    )
    killed_after = time.monotonic() - t_kill
    assert killed_after < 10
    assert _status(sess, 1) == RUNNING  # its record waits for the store
    over.touch()  # the store is back
    sess.wait_terminated(timeout=150)
    assert [(r.jobnr, r.status) for r in sess.records] == [(1, KILLED), (2, FINISHED)]
    assert sess.record(1).error == "killed on request"
    plog = sess.tar_member("processjobslog_LI_0.tar.bz2", "processjobs.log")
    sent = [int(n) for n in re.findall(r"write failed after (\d+) request", plog)]
    assert sent and all(n <= 3 for n in sent), sent
    assert "written after earlier failures" in plog
    summary = re.search(r"status writes: (\d+) records for (\d+) jobs", plog)
    assert summary and int(summary.group(1)) <= 2 * int(summary.group(2))
    _audit(boto3_client, sess)


def test_spot_notice_loses_the_running_jobs_and_lets_the_instance_go(
    tmp_path: Path, local_cloud: Any, boto3_client: Any, aws_env: dict[str, str]
) -> None:
    """The worker of a spot instance, in this process, against the local cloud, with the
    instance's metadata served as EC2 documents it: spot/instance-action is 404 until the
    notice, then ``{"action": "terminate", "time": ...}``."""
    from awsac_agent.agentlog import AgentLog
    from awsac_agent.imds import Imds
    from awsac_agent.processjobs import Settings, Worker
    from awsac_agent.sessionid import SESSION_TAG, new_session_id
    from awsac_agent.userdata import UserData, build_userdata, extras

    from awsac_tui.local import service

    before = service._side(local_cloud.endpoint, "health")["boot_command"]
    service.configure(
        local_cloud, boot_command=[sys.executable, "-c", "import time; time.sleep(600)"]
    )
    try:
        ec2 = boto3_client("ec2")
        iid = ec2.run_instances(
            ImageId=local_cloud.image_id,
            MinCount=1,
            MaxCount=1,
            InstanceType="c1.medium",
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": SESSION_TAG, "Value": "x"}]}
            ],
        )["Instances"][0]["InstanceId"]
    finally:
        service.configure(local_cloud, boot_command=before)
    sid = new_session_id("spot")
    ec2.create_tags(Resources=[iid], Tags=[{"Key": SESSION_TAG, "Value": sid}])
    bucket = "awsac-agent-tests"
    s3 = boto3_client("s3")
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    session = tmp_path / "session"
    session.mkdir()
    (session / "jobs.cfg").write_text("-;long.sh;2\n")
    (session / "long.sh").write_text(LONG_JOB)
    work = tmp_path / "work"
    ud = build_userdata(UserData(sid, bucket, "a.tar.bz2", 2, extras(store="s3", spot=True)))
    (work / "sessioninfo").mkdir(parents=True)
    (work / "sessioninfo" / "awsac.sessinfo").write_text(ud)
    zone = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    paths = {
        "/latest/meta-data/instance-id": iid,
        "/latest/meta-data/ami-launch-index": "0",
        "/latest/meta-data/placement/availability-zone": zone["Placement"]["AvailabilityZone"],
        "/latest/meta-data/placement/region": aws_env["AWS_DEFAULT_REGION"],
        "/latest/meta-data/instance-life-cycle": "spot",
    }
    settings = Settings(
        work_dir=work,
        session_dir=session,
        poll_seconds=0.2,
        heartbeat_seconds=0.5,
        spot_poll_seconds=0.2,
        coalesce_seconds=0.2,
        kill_grace_seconds=1,
        status_flush_seconds=20,
    )
    log = AgentLog(work / "processjobs.log")
    with serve(paths) as fake:
        worker = Worker(settings, log, imds=Imds(fake.endpoint, attempts=2, backoff=0.05))
        notice_time = "2026-05-09T12:04:31Z"

        def give_notice() -> None:
            wait_for(lambda: len(worker.running) == 2, 30, "both jobs running")
            fake.paths["/latest/meta-data/spot/instance-action"] = {
                "action": "terminate",
                "time": notice_time,
            }

        import threading

        threading.Thread(target=give_notice, daemon=True).start()
        rc = worker.run()
    log.close()
    assert rc == 0
    from awsac_agent.store import S3Store

    records = S3Store(s3, bucket, sid).read_all()
    cause = f"spot interruption notice at 12:04:31Z for instance {iid}"
    assert [(r.jobnr, r.status, r.error) for r in records] == [(1, LOST, cause), (2, LOST, cause)]
    for n in (1, 2):
        obj = s3.get_object(Bucket=bucket, Key=s3layout.attempt_stdouterr_key(sid, n, 1))
        assert obj["ContentLength"] > 0  # the partial log (its text is checked above for attempt 1)
    text = (work / "processjobs.log").read_text()
    assert "spot interruption notice: action 'terminate'" in text
    assert "starting no new job" in text
    # the instance is gone after the notice (the worker ended it)
    wait_for(
        lambda: (
            ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"][
                "Name"
            ]
            == "terminated"
        ),
        30,
        "the spot instance to be terminated",
    )
    # its heartbeat says what happened
    from awsac_agent.status import HB_TEARDOWN, Heartbeat

    beat = Heartbeat.from_json(
        s3.get_object(Bucket=bucket, Key=s3layout.heartbeat_key(sid, iid))["Body"].read().decode()
    )
    assert beat.state == HB_TEARDOWN and beat.instance_id == iid
    left = leftovers_in(boto3_client, sid, bucket)
    assert left.instances == [] and left.volumes == []


def test_imds_spot_notice_and_rebalance_as_ec2_documents_them() -> None:
    from awsac_agent.imds import Imds

    with serve({"/latest/meta-data/instance-life-cycle": "on-demand"}) as fake:
        imds = Imds(fake.endpoint, attempts=1)
        assert imds.life_cycle() == "on-demand"
        assert imds.spot_instance_action() is None  # 404 before any notice
        assert imds.rebalance_recommendation() is None
        fake.paths["/latest/meta-data/spot/instance-action"] = {
            "action": "stop",
            "time": "2026-05-09T12:04:31Z",
        }
        fake.paths["/latest/meta-data/events/recommendations/rebalance"] = {
            "noticeTime": "2026-05-09T12:00:00Z"
        }
        assert imds.spot_instance_action() == {"action": "stop", "time": "2026-05-09T12:04:31Z"}
        assert imds.rebalance_recommendation() == {"noticeTime": "2026-05-09T12:00:00Z"}
