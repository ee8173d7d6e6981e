"""End-to-end: the real agent (boot step and worker) runs sessions on the local cloud."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from agent_e2e_helpers import EVENTGEN, start_session
from awsac_agent.status import FAILED, FINISHED, KILLED, parse_iso
from polling import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
# Both status stores where the store is the subject (the whole flow, a kill request, a failed
# write, an error record); one of them, in turn, where the agent's own behaviour is (an exit
# code, upload retries, redaction, a timeout): each store's writes are the same calls there.
STORES = ["simpledb", "s3"]


def _eventgen_scripts() -> dict[str, str]:
    names = ["gen_30.sh", "gen_1000.sh", "CSC.007410.singlepart_singlepi_logE.cfg"]
    return {n: (EVENTGEN / n).read_text() for n in names}


def _status(store: Any, jobnr: int) -> str | None:
    from botocore.exceptions import ClientError

    try:
        rec = store.get(jobnr)
    except ClientError:  # the agent has not created the domain yet
        return None
    return rec.status if rec else None


def _no_volumes_left(sess: Any) -> None:
    assert sess.session_volumes() == [], "the agent left volumes behind"


@pytest.mark.parametrize("store", STORES)
def test_eventgen_session_finishes_and_cleans_up(
    store: str, tmp_path: Path, local_cloud: Any, boto3_client: Any, release_snapshot: str
) -> None:
    jobs = f"{release_snapshot};gen_30.sh;2\n{release_snapshot};gen_1000.sh;2\n"
    sess = start_session(
        tmp_path,
        boto3_client,
        local_cloud.image_id,
        jobs,
        _eventgen_scripts(),
        n_instances=2,
        cores=2,
        store=store,
    )
    sess.wait_terminated()
    assert [(r.jobnr, r.status, r.returncode) for r in sess.records] == [
        (n, FINISHED, 0) for n in (1, 2, 3, 4)
    ]
    for r in sess.records:
        assert r.runstarttime and r.runendtime and r.savestarttime and r.saveendtime
        assert r.results == "saved" and r.error is None
        assert r.attempt == 1 and parse_iso(r.updated) >= parse_iso(r.saveendtime)
        assert r.snapshot == release_snapshot
        assert r.launchindex == (r.jobnr - 1) // 2
    keys = sess.keys()
    expected = {
        "processjobslog_LI_0.tar.bz2",
        "processjobslog_LI_1.tar.bz2",
        "sessionarchive.tar.bz2",
        *(f"results_job_{n}.tar.bz2" for n in (1, 2, 3, 4)),
        *(f"stdouterr_job_{n}.tar.bz2" for n in (1, 2, 3, 4)),
        *(f"attempts/job_{n}/1/results_job_{n}.tar.bz2" for n in (1, 2, 3, 4)),
        *(f"attempts/job_{n}/1/stdouterr_job_{n}.tar.bz2" for n in (1, 2, 3, 4)),
        "heartbeat/" + sess.instance_ids[0] + ".json",
    }
    assert expected <= keys
    assert not [k for k in keys if k.startswith("live/")]  # nobody watched: no live-log uploads
    paper_eleven = {k for k in keys if "/" not in k}
    assert len(paper_eleven) == 11, sorted(paper_eleven)
    assert "ATLAS JOB END" in sess.tar_member("stdouterr_job_1.tar.bz2", "stdouterr_job_1.log")
    # the live tail is for running jobs; an ended job's output is read from its saved log
    assert "ATLAS JOB END" in sess.tar_member("stdouterr_job_3.tar.bz2", "stdouterr_job_3.log")
    plog = sess.tar_member("processjobslog_LI_1.tar.bz2", "processjobs.log")
    assert "my job numbers are: [3, 4]" in plog
    _no_volumes_left(sess)
    console = sess.console(sess.instance_ids[0])
    assert "awsac_all_instances_autorun.sh" in console
    assert "instructing EC2 to terminate my instance" in console


def _one_instance(
    tmp_path: Path,
    local_cloud: Any,
    boto3_client: Any,
    store: str,
    jobs: str,
    scripts: dict[str, str],
    extra: str = "",
    **kw: Any,
) -> Any:
    return start_session(
        tmp_path,
        boto3_client,
        local_cloud.image_id,
        jobs,
        scripts,
        n_instances=1,
        cores=2,
        store=store,
        autorun_extra=extra,
        **kw,
    )


RESULTS_JOB = (
    "#!/bin/sh\necho making results\necho data > out.txt\ntar cjf results.tar.bz2 out.txt\n"
)


@pytest.mark.parametrize("store", ["s3"])
def test_nonzero_exit_is_finished_with_its_returncode(
    store: str, tmp_path: Path, local_cloud: Any, boto3_client: Any, release_snapshot: str
) -> None:
    scripts = {"bad.sh": RESULTS_JOB + "echo failing on purpose\nexit 3\n", "good.sh": RESULTS_JOB}
    jobs = f"{release_snapshot};bad.sh;1\n{release_snapshot};good.sh;1\n"
    sess = _one_instance(tmp_path, local_cloud, boto3_client, store, jobs, scripts)
    sess.wait_terminated()
    assert [(r.status, r.returncode, r.results) for r in sess.records] == [
        (FINISHED, 3, "saved"),
        (FINISHED, 0, "saved"),
    ]
    assert {"results_job_1.tar.bz2", "stdouterr_job_1.tar.bz2"} <= sess.keys()
    assert "failing on purpose" in sess.tar_member("stdouterr_job_1.tar.bz2", "stdouterr_job_1.log")
    _no_volumes_left(sess)


@pytest.mark.parametrize("store", ["simpledb"])
def test_job_without_results_is_noted(
    store: str, tmp_path: Path, local_cloud: Any, boto3_client: Any, release_snapshot: str
) -> None:
    scripts = {"nores.sh": '#!/bin/sh\necho "release at $ATLASDir"\nls "$ATLASDir"\n'}
    jobs = f"{release_snapshot};nores.sh;1\n"
    sess = _one_instance(tmp_path, local_cloud, boto3_client, store, jobs, scripts)
    sess.wait_terminated()
    (rec,) = sess.records
    assert (rec.status, rec.returncode, rec.results, rec.error) == (FINISHED, 0, "none", None)
    keys = sess.keys()
    assert "results_job_1.tar.bz2" not in keys and "stdouterr_job_1.tar.bz2" in keys
    log = sess.tar_member("stdouterr_job_1.tar.bz2", "stdouterr_job_1.log")
    assert "14.2.10" in log  # the snapshot's content was visible at ATLASDir
    _no_volumes_left(sess)


@pytest.mark.parametrize("store", STORES)
def test_missing_snapshot_fails_its_jobs_only(
    store: str, tmp_path: Path, local_cloud: Any, boto3_client: Any, release_snapshot: str
) -> None:
    jobs = f"snap-0badc0ffee0badc0f;a.sh;1\n{release_snapshot};a.sh;1\n"
    sess = _one_instance(tmp_path, local_cloud, boto3_client, store, jobs, {"a.sh": RESULTS_JOB})
    sess.wait_terminated()
    first, second = sess.records
    assert first.status == FAILED and "snap-0badc0ffee0badc0f" in (first.error or "")
    assert first.runstarttime is None
    assert (second.status, second.returncode) == (FINISHED, 0)
    keys = sess.keys()
    assert "stdouterr_job_1.tar.bz2" not in keys and "results_job_2.tar.bz2" in keys
    _no_volumes_left(sess)


LONG_JOB = """#!/bin/sh
trap '' TERM
sleep 300 &
echo $! > child.pid
echo long job started
wait
"""


@pytest.mark.parametrize("store", STORES)
def test_kill_request_ends_the_process_group(
    store: str, tmp_path: Path, local_cloud: Any, boto3_client: Any, release_snapshot: str
) -> None:
    from awsac_tui.local.common import pid_alive

    jobs = f"{release_snapshot};long.sh;1\n{release_snapshot};a.sh;1\n"
    sess = _one_instance(
        tmp_path, local_cloud, boto3_client, store, jobs, {"long.sh": LONG_JOB, "a.sh": RESULTS_JOB}
    )
    st = sess.store()
    wait_for(lambda: _status(st, 1) == "running", 60, "job 1 running")
    sess.watch(1)
    wait_for(
        lambda: "live/job_1.log" in sess.keys() and "started" in sess.object_text("live/job_1.log"),
        30,
        "the live log of job 1",
    )
    root = Path(local_cloud.state_dir) / "local" / "instances" / sess.instance_ids[0] / "root"
    child = int((root / "mnt" / "awsac" / "jobs" / "1" / "child.pid").read_text())
    assert pid_alive(child)
    sess.kill(1)
    sess.wait_terminated(timeout=60)
    killed, other = sess.records
    assert killed.status == KILLED and killed.error == "killed on request"
    assert killed.returncode is not None and killed.returncode < 0
    assert other.status == FINISHED
    assert "long job started" in sess.tar_member("stdouterr_job_1.tar.bz2", "stdouterr_job_1.log")
    wait_for(lambda: not pid_alive(child), 10, "the job's background child to be gone")
    plog = sess.tar_member("processjobslog_LI_0.tar.bz2", "processjobs.log")
    assert "sending SIGKILL" in plog  # the job ignored SIGTERM
    _no_volumes_left(sess)


@pytest.mark.parametrize("store", ["s3"])
def test_results_upload_failing_twice_then_succeeding(
    store: str, tmp_path: Path, local_cloud: Any, boto3_client: Any, release_snapshot: str
) -> None:
    extra = "export AWSAC_FAULTS='s3:PutObject:match=results_job_1:fail=2:InternalError'"
    jobs = f"{release_snapshot};a.sh;1\n"
    sess = _one_instance(
        tmp_path, local_cloud, boto3_client, store, jobs, {"a.sh": RESULTS_JOB}, extra
    )
    sess.wait_terminated()
    (rec,) = sess.records
    assert (rec.status, rec.results) == (FINISHED, "saved")
    assert "results_job_1.tar.bz2" in sess.keys()
    plog = sess.tar_member("processjobslog_LI_0.tar.bz2", "processjobs.log")
    assert plog.count("results_job_1.tar.bz2: attempt") == 2
    assert "InternalError" in plog
    _no_volumes_left(sess)


@pytest.mark.parametrize("store", STORES)
def test_status_store_error_on_one_update(
    store: str, tmp_path: Path, local_cloud: Any, boto3_client: Any, release_snapshot: str
) -> None:
    fault = (
        "sdb:*:fail=1:ServiceUnavailable"
        if store == "simpledb"
        else "s3:PutObject:match=/status/:fail=1:ServiceUnavailable"
    )
    jobs = f"{release_snapshot};a.sh;2\n"
    sess = _one_instance(
        tmp_path,
        local_cloud,
        boto3_client,
        store,
        jobs,
        {"a.sh": RESULTS_JOB},
        f"export AWSAC_FAULTS='{fault}'",
    )
    sess.wait_terminated()
    assert [(r.status, r.returncode) for r in sess.records] == [(FINISHED, 0), (FINISHED, 0)]
    plog = sess.tar_member("processjobslog_LI_0.tar.bz2", "processjobs.log")
    assert "attempt 1 of 4 failed (ServiceUnavailable" in plog
    _no_volumes_left(sess)


def _hostile_archive(path: Path) -> None:
    import io
    import tarfile

    with tarfile.open(path, "w:bz2") as tar:
        for name, data in (
            ("jobs.cfg", b"-;a.sh;1\n"),
            ("a.sh", b"echo ran > ran.txt\n"),
            ("../../../escaped.txt", b"gotcha\n"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("store", ["simpledb"])
def test_hostile_archive_is_refused_and_nothing_runs(
    store: str, tmp_path: Path, local_cloud: Any, boto3_client: Any
) -> None:
    archive = tmp_path / "evil.tar.bz2"
    _hostile_archive(archive)
    sess = start_session(
        tmp_path,
        boto3_client,
        local_cloud.image_id,
        "",
        {},
        n_instances=1,
        cores=1,
        store=store,
        archive=archive,
    )
    wait_for(
        lambda: all(s == "terminated" for s in sess.instance_states().values()), 60, "termination"
    )
    console = sess.console(sess.instance_ids[0])
    assert "refusing to extract" in console
    assert "instructing EC2 to terminate my instance" in console
    root = Path(local_cloud.state_dir) / "local" / "instances" / sess.instance_ids[0] / "root"
    assert not list(root.parent.rglob("escaped.txt"))
    jobs_dir = root / "mnt" / "awsac" / "jobs"
    assert not jobs_dir.exists() or not any(jobs_dir.iterdir())
    assert sess.keys() == {"sessionarchive.tar.bz2"}
    _no_volumes_left(sess)


FAKE_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
FAKE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
LEAKY_JOB = f"""#!/bin/sh
echo "AWS_ACCESS_KEY_ID={FAKE_KEY_ID}"
echo "AWS_SECRET_ACCESS_KEY={FAKE_SECRET}"
echo "aws_session_token = IQoJb3JpZ2luX2VjEHoaCXVzLWVhc3QtMSJHMEUCIQD5examplelongtokenvalue1234567890abcdef"
echo "standalone {FAKE_SECRET} in a line"
echo harmless line
sleep 3  # running through several polls (0.5 s), so the live tail is uploaded while it runs
"""


@pytest.mark.parametrize("store", ["s3"])
def test_credentials_in_job_output_are_redacted(
    store: str, tmp_path: Path, local_cloud: Any, boto3_client: Any, release_snapshot: str
) -> None:
    jobs = f"{release_snapshot};leak.sh;1\n"
    sess = _one_instance(tmp_path, local_cloud, boto3_client, store, jobs, {"leak.sh": LEAKY_JOB})
    sess.watch(1)  # the log view is open: the agent uploads the live tail
    sess.wait_terminated()
    assert sess.records[0].status == FINISHED
    texts = [
        sess.tar_member("stdouterr_job_1.tar.bz2", "stdouterr_job_1.log"),
        sess.object_text("live/job_1.log"),
        sess.tar_member("processjobslog_LI_0.tar.bz2", "processjobs.log"),
        sess.console(sess.instance_ids[0]),
    ]
    for text in texts:
        assert FAKE_KEY_ID not in text and FAKE_SECRET not in text and "IQoJb3Jp" not in text
    assert "harmless line" in texts[0] and texts[0].count("[REDACTED]") == 4
    assert "harmless line" in texts[1] and texts[1].count("[REDACTED]") == 4
    _no_volumes_left(sess)


@pytest.mark.parametrize("store", ["simpledb"])
def test_job_over_max_job_min_is_killed_with_timeout(
    store: str, tmp_path: Path, local_cloud: Any, boto3_client: Any, release_snapshot: str
) -> None:
    jobs = f"{release_snapshot};long.sh;1\n"
    sess = _one_instance(
        tmp_path,
        local_cloud,
        boto3_client,
        store,
        jobs,
        {"long.sh": "#!/bin/sh\nsleep 300\n"},
        extra_userdata={"max_job_min": "0.03"},
    )
    sess.wait_terminated(timeout=60)
    (rec,) = sess.records
    assert rec.status == KILLED and (rec.error or "").startswith("timeout")
    _no_volumes_left(sess)


def test_keep_instance_skips_only_the_termination(
    tmp_path: Path, local_cloud: Any, boto3_client: Any, release_snapshot: str
) -> None:
    import sys

    from awsac_tui.local import service

    before = service._side(local_cloud.endpoint, "health")
    service.configure(
        local_cloud,
        boot_command=[sys.executable, "-m", "awsac_agent", "autorun", "--keep-instance"],
    )
    try:
        jobs = f"{release_snapshot};a.sh;1\n"
        sess = _one_instance(tmp_path, local_cloud, boto3_client, "s3", jobs, {"a.sh": RESULTS_JOB})
        # the runner reads the boot command when it boots (a timer after RunInstances): restore
        # it only once this instance's boot step has started and printed
        wait_for(lambda: sess.console(sess.instance_ids[0]), 30, "the boot step to start")
    finally:
        service.configure(local_cloud, boot_command=before["boot_command"])
    wait_for(lambda: "processjobslog_LI_0.tar.bz2" in sess.keys(), 60, "the worker's own log")
    wait_for(lambda: "not terminating" in sess.console(sess.instance_ids[0]), 20, "the keep notice")
    assert sess.instance_states() == {sess.instance_ids[0]: "running"}
    (rec,) = sess.store().read_all()
    assert rec.status == FINISHED
    _no_volumes_left(sess)
    sess.ec2.terminate_instances(InstanceIds=sess.instance_ids)
    sess.wait_terminated(timeout=30)
