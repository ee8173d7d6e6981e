"""End-to-end: the paper's example on the local cloud, through `awsac` as a user types it."""

from __future__ import annotations

import io
import json
import re
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest
from cloud_audit import leftovers_in
from polling import poll, poll_text

from .conftest import write_example

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

PAPER_OBJECTS = sorted(
    [f"processjobslog_LI_{i}.tar.bz2" for i in (0, 1)]
    + [f"results_job_{n}.tar.bz2" for n in range(1, 5)]
    + ["sessionarchive.tar.bz2"]
    + [f"stdouterr_job_{n}.tar.bz2" for n in range(1, 5)]
)


def tagged(boto3_client, sid: str) -> tuple[list[str], list[str], list[str]]:
    """(live instances, volumes, objects and unfinished uploads) still carrying session ``sid``."""
    left = leftovers_in(boto3_client, sid, "atlassessions")
    return left.instances, left.volumes, left.objects + left.uploads


def check_snapshot_shape(snap: dict[str, Any], sid: str) -> None:
    assert snap["session_id"] == sid and snap["cloud"] == "local"
    assert [j["jobnr"] for j in snap["jobs"]] == [1, 2, 3, 4]
    for j in snap["jobs"]:
        assert set(j) >= {
            "jobnr",
            "status",
            "instance_id",
            "launchindex",
            "shellscript",
            "snapshot",
            "returncode",
            "runstarttime",
            "runendtime",
            "error",
        }
        assert j["launchindex"] == (j["jobnr"] - 1) // 2
    for i in snap["instances"]:
        assert set(i) >= {
            "instance_id",
            "launchindex",
            "state",
            "instance_type",
            "zone",
            "public_dns",
        }
    for v in snap["volumes"]:
        assert set(v) >= {"volume_id", "snapshot", "state", "instance_id", "device"}


def test_session_toml_with_subcommands(
    cli, example_dir: Path, tmp_path: Path, boto3_client
) -> None:
    rc, out, err = cli("start", str(example_dir / "session.toml"), "--yes", "--json")
    assert rc == 0, err
    started = json.loads(out)
    sid = started["session_id"]
    assert started["reservation_id"].startswith("r-")
    assert Path(started["record"]).is_file()
    assert stat.S_IMODE(Path(started["record"]).stat().st_mode) == 0o600

    during = poll(cli, sid, lambda s: len(s["instances"]) == 2)
    check_snapshot_shape(during, sid)
    assert {i["instance_type"] for i in during["instances"]} == {"c5.large"}

    rc, out, err = cli("check", sid, "--watch", "--interval", "0.5")
    assert rc == 0, out + err
    assert "===== Job 4 (status: finished) =====" in out

    rc, out, _ = cli("check", sid, "--json")
    after = json.loads(out)
    check_snapshot_shape(after, sid)
    assert [j["status"] for j in after["jobs"]] == ["finished"] * 4
    assert all(j["returncode"] == 0 for j in after["jobs"])
    assert all(j["runstarttime"].endswith("Z") for j in after["jobs"])
    assert {j["shellscript"] for j in after["jobs"]} == {"gen_30.sh", "gen_1000.sh"}

    # the agent uploads its own log (processjobslog_LI_L) last, then terminates
    poll(cli, sid, lambda s: all(i["state"] == "terminated" for i in s["instances"]))
    outdir = tmp_path / "results"
    outdir.mkdir()
    rc, out, err = cli("results", sid, "-o", str(outdir))
    assert rc == 0, err
    target = outdir / f"session-{sid}"
    assert sorted(p.name for p in target.iterdir()) == PAPER_OBJECTS
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in target.iterdir())
    with tarfile.open(target / "results_job_3.tar.bz2") as tar:
        assert "EVGEN_007410_00001.txt" in tar.getnames()
    assert "11 saved, 0 identical skipped" in out

    rc, out, _ = cli("results", sid, "-o", str(outdir))
    assert rc == 0 and "0 saved, 11 identical skipped" in out

    (target / "results_job_1.tar.bz2").write_bytes(b"changed")
    rc, out, _ = cli("results", sid, "-o", str(outdir))
    assert "kept results_job_1.tar.bz2" in out
    assert (target / "results_job_1.tar.bz2").read_bytes() == b"changed"
    rc, out, _ = cli("results", sid, "-o", str(outdir), "--overwrite")
    assert "overwritten results_job_1.tar.bz2" in out

    rc, out, _ = cli("logs", sid, "3")
    assert rc == 0 and "ATLAS JOB BEGIN: gen 1000 events" in out

    rc, out, err = cli("cleanup", sid, "--yes")
    assert rc == 0, err
    assert f"deleted s3://atlassessions/{sid}/sessionarchive.tar.bz2" in out
    assert tagged(boto3_client, sid) == ([], [], [])
    rc, out, _ = cli("list", "--json")
    assert {r["session_id"]: r["state"] for r in json.loads(out)}[sid] == "cleaned"


def test_paper_spelling_with_session_ini(
    cli, local_cloud, release_snapshot, tmp_path: Path, monkeypatch, boto3_client
) -> None:
    job = write_example(tmp_path / "eventgen", local_cloud, release_snapshot)
    # session.ini names no cloud: the default one (the environment points it at the local
    # cloud), where start creates no bucket; the paper's user had made theirs
    boto3_client("s3").create_bucket(Bucket="atlassessions")
    archive = tmp_path / "sessionarchive.tar.bz2"
    with tarfile.open(archive, "w:bz2") as tar:  # as the paper built it: tar cjvf ... *
        for p in sorted(job.iterdir()):
            if p.name not in ("session.ini", "session.toml"):
                tar.add(p, p.name)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    rc, out, err = cli("--start", "-i", str(job / "session.ini"), "-a", str(archive))
    assert rc == 0, err
    assert "lacked the agent's session files" in out
    assert "Request accepted. EC2 reservation ID: r-" in out
    cfgs = list(cwd.glob("session-*.cfg"))
    assert len(cfgs) == 1 and cfgs[0].read_text().startswith("[sessionconfig]\n")
    cfg = str(cfgs[0])
    sid = cfgs[0].stem.removeprefix("session-")

    rc, out, _ = cli("--check", "-c", cfg)
    assert rc in (0, 1) and f"session_id = {sid}" in out
    rc, out, _ = cli("check", cfg, "--watch", "--interval", "0.5")
    assert rc == 0, out
    poll(cli, cfg, lambda s: all(i["state"] == "terminated" for i in s["instances"]))
    outdir = cwd / "sessionresults"
    outdir.mkdir()
    rc, out, _ = cli("--getresults", "-c", cfg, "-o", str(outdir))
    assert rc == 0
    assert sorted(p.name for p in (outdir / f"session-{sid}").iterdir()) == PAPER_OBJECTS
    rc, out, _ = cli("--cleanup", "-c", cfg, "--yes")
    assert rc == 0 and f"SimpleDB domain {sid}" in out
    assert tagged(boto3_client, sid) == ([], [], [])


@pytest.mark.parametrize("store", ["s3", "simpledb"])
def test_kill_a_long_job(
    cli, local_cloud, release_snapshot, tmp_path: Path, boto3_client, store: str
) -> None:
    job = write_example(
        tmp_path / "long",
        local_cloud,
        release_snapshot,
        store=store,
        jobs="-;long.sh;1\n",
        fast=True,
    )
    (job / "long.sh").write_text("#!/bin/sh\necho long job\nwhile true; do sleep 1; done\n")
    rc, out, err = cli("start", str(job / "session.toml"), "--yes", "--json")
    assert rc == 0, err
    sid = json.loads(out)["session_id"]
    poll(cli, sid, lambda s: s["jobs"][0]["status"] == "running")
    rc, out, err = cli("kill", sid, "1", "--wait", "--timeout", "120")
    assert rc == 0, out + err
    assert "job 1: killed" in out
    rc, out, _ = cli("check", sid, "--json")
    assert json.loads(out)["jobs"][0]["status"] == "killed"
    assert rc == 1  # a killed job: the session did not succeed
    rc, _, _ = cli("cleanup", sid, "--yes", "--force")
    assert rc == 0
    assert tagged(boto3_client, sid) == ([], [], [])


def test_start_failing_at_the_image_check_leaves_nothing(
    cli, example_dir: Path, boto3_client
) -> None:
    from awsac_tui import records

    toml = example_dir / "session.toml"

    toml.write_text(
        re.sub(
            r'image_id = "ami-[0-9a-f]+"', 'image_id = "ami-0123456789abcdef0"', toml.read_text()
        )
    )
    s3 = boto3_client("s3")

    def objects() -> set[str]:
        try:
            return {
                o["Key"] for o in s3.list_objects_v2(Bucket="atlassessions").get("Contents", [])
            }
        except s3.exceptions.NoSuchBucket:
            return set()

    before = ({r.session_id for r in records.list_records()}, objects())
    rc, out, err = cli("start", str(toml), "--yes")
    assert rc == 2
    assert "ami-0123456789abcdef0" in err and ("not found" in err or "does not exist" in err)
    # the image is checked before anything is created: no record, no object, no upload
    assert ({r.session_id for r in records.list_records()}, objects()) == before


def test_console_terminate_and_lost(
    cli, local_cloud, release_snapshot, tmp_path: Path, boto3_client
) -> None:
    job = write_example(
        tmp_path / "long", local_cloud, release_snapshot, jobs="-;long.sh;1\n", fast=True
    )
    (job / "long.sh").write_text("#!/bin/sh\necho long job\nwhile true; do sleep 1; done\n")
    rc, out, err = cli("start", str(job / "session.toml"), "--yes", "--json")
    assert rc == 0, err
    sid = json.loads(out)["session_id"]
    snap = poll(cli, sid, lambda s: s["jobs"][0]["status"] == "running")
    iid = snap["jobs"][0]["instance_id"]
    rc, out, _ = cli("console", sid, iid)
    assert rc == 0 and out.strip(), "console output of a running instance is empty"
    rc, out, _ = cli("ssh", sid, "i-00000000000000000")
    assert rc == 2
    rc, out, err = cli("terminate", sid, iid)
    assert rc == 0, err
    # the agent gets SIGTERM and reports the job as it ends
    poll(cli, sid, lambda s: s["instances"][0]["state"] == "terminated")
    poll(cli, sid, lambda s: s["jobs"][0]["status"] in ("failed", "lost"))
    # an agent that died without a word: the store still says running, the instance is gone
    s3 = boto3_client("s3")
    key = f"{sid}/status/job1.json"
    record = json.loads(s3.get_object(Bucket="atlassessions", Key=key)["Body"].read())
    stale = {**record, "status": "running", "error": None}
    s3.put_object(Bucket="atlassessions", Key=key, Body=json.dumps(stale))
    snap = poll(cli, sid, lambda s: s["jobs"][0]["status"] == "lost")
    assert iid in snap["jobs"][0]["error"]
    # written back: the status store itself now says lost
    body = s3.get_object(Bucket="atlassessions", Key=key)["Body"].read()
    assert json.loads(body)["status"] == "lost"
    rc, _, _ = cli("cleanup", sid, "--yes", "--force")
    assert rc == 0 and tagged(boto3_client, sid) == ([], [], [])


def test_no_credentials_names_the_fix(cli, monkeypatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    spec = tmp_path / "session.toml"
    spec.write_text(
        'shortdescr = "x"\ninstance_type = "c5.large"\nimage_id = "ami-00000000"\nbucket = "bkt-x"\n'
    )
    rc, out, err = cli("start", str(spec), "--yes", "--region", "us-east-1")
    assert rc == 2
    assert "No AWS credentials found" in err and "--local" in err and "--profile" in err
    assert "Traceback" not in err


def test_a_running_instance_that_never_reports_is_silent(
    cli, local_cloud, release_snapshot, tmp_path: Path, boto3_client
) -> None:
    import sys

    from awsac_tui.local import service
    from awsac_tui.local.common import default_boot_command

    job = write_example(tmp_path / "hang", local_cloud, release_snapshot, jobs="-;gen_30.sh;1\n")
    hang = [
        sys.executable,
        "-c",
        "import time; print('stuck before the agent', flush=True); time.sleep(300)",
    ]
    service.configure(local_cloud, boot_command=hang)
    try:
        rc, out, err = cli("start", str(job / "session.toml"), "--yes", "--json")
        assert rc == 0, err
    finally:
        service.configure(local_cloud, boot_command=default_boot_command())
    sid = json.loads(out)["session_id"]
    poll(cli, sid, lambda s: [i["state"] for i in s["instances"]] == ["running"])
    out = poll_text(cli, sid, "SILENT", 60, "--boot-timeout", "1")
    assert f"awsac console {sid} i-" in out  # the notice says where to look
    assert "===== Job 1 (status: pending) =====" in out
    rc, out, _ = cli("cleanup", sid, "--yes", "--force")
    assert rc == 0 and "terminated instance i-" in out
    assert tagged(boto3_client, sid) == ([], [], [])
