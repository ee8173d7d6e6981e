"""What the user made is not lost, and nothing escapes or is left behind (issues 16 and 19):
results into new directories and never outside them, careful cleanup, kill of an ended job,
a start that asks first. Every test ends with the leak audit (multipart uploads included)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from cloud_audit import Leftovers, scratch_left

from .helpers import BUCKET, all_done, audit, leftovers, poll, start, wait_for

pytestmark = [pytest.mark.slow]


def _session(cli, session_dir) -> str:
    d = session_dir()
    sid = start(cli, d)
    poll(cli, sid, all_done, timeout=120)
    return sid


def test_results_into_a_new_nested_dir_then_cleanup_keeps_the_job_states(
    cli, session_dir, tmp_path: Path, boto3_client
) -> None:
    from awsac_tui import records

    sid = _session(cli, session_dir)
    out = tmp_path / "not" / "yet" / "there"
    rc, text, err = cli("results", sid, "-o", str(out))
    assert rc == 0, text + err
    target = out / f"session-{sid}"
    assert (target / "results_job_1.tar.bz2").is_file()
    assert "outputfolder created" in text
    rec = records.load_record(sid)
    fetched = {f.key: f.etag for f in rec.fetched}
    listing = {
        o["Key"][len(sid) + 1 :]: o["ETag"].strip('"')
        for o in boto3_client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"{sid}/")["Contents"]
    }
    assert fetched["results_job_1.tar.bz2"] == listing["results_job_1.tar.bz2"]
    assert fetched["stdouterr_job_1.tar.bz2"] == listing["stdouterr_job_1.tar.bz2"]

    # identical by S3's stored checksum, also for the legacy --getresults spelling
    rc, text, _ = cli("--getresults", "-c", sid, "-o", str(tmp_path / "legacy" / "dir"))
    assert rc == 0 and (tmp_path / "legacy" / "dir" / f"session-{sid}").is_dir()
    rc, text, _ = cli("results", sid, "-o", str(out))
    assert rc == 0 and "0 saved" in text and "identical skipped" in text

    # kill of an ended job: nothing written, and it says so
    rc, text, _ = cli("kill", sid, "1")
    assert rc == 0 and "has already ended (finished)" in text and "nothing was written" in text
    control = boto3_client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"{sid}/control/")
    assert not control.get("Contents")

    rc, text, err = cli("cleanup", sid, "--yes")
    assert rc == 0, text + err
    assert "kept nothing" in text and "removed " in text
    assert f"deleted s3://{BUCKET}/{sid}/results_job_1.tar.bz2" in text

    # a cleaned session keeps its last job states, marked cleaned
    rc, text, _ = cli("check", sid)
    assert "===== Job 1 (status: finished, cleaned) =====" in text
    assert "session cleaned up" in text
    rc, text, _ = cli("check", sid, "--json")
    snap = json.loads(text)
    assert snap["cleaned"] is True and snap["jobs"][0]["status"] == "finished"
    assert snap["jobs"][0]["returncode"] == 0
    # results after cleanup: says the objects were removed, non-zero exit
    rc, text, err = cli("results", sid, "-o", str(out))
    assert rc == 1 and "its objects were removed" in err and "had been downloaded" in err
    assert leftovers(boto3_client, sid) == Leftovers([], [], [], [])
    audit(cli, boto3_client, sid)


def test_cleanup_refuses_outputs_never_downloaded(cli, session_dir, boto3_client) -> None:
    sid = _session(cli, session_dir)
    before = leftovers(boto3_client, sid).objects
    rc, text, err = cli("cleanup", sid, "--yes")
    assert rc == 1, text + err
    assert "never downloaded" in text
    for name in ("results_job_1.tar.bz2", "stdouterr_job_1.tar.bz2"):
        assert name in text
    assert "removed nothing" in text and "--force" in text
    assert sorted(leftovers(boto3_client, sid).objects) == sorted(before)  # nothing deleted
    rc, text, _ = cli("check", sid, "--json")
    assert json.loads(text)["jobs"][0]["status"] == "finished"  # the store is kept too

    rc, text, err = cli("cleanup", sid, "--yes", "--force")
    assert rc == 0, text + err
    assert leftovers(boto3_client, sid).objects == []
    audit(cli, boto3_client, sid)


def test_cleanup_refuses_to_end_running_jobs(cli, session_dir, boto3_client) -> None:
    from .helpers import LONG_JOB

    d = session_dir(scripts={"a.sh": LONG_JOB})
    sid = start(cli, d)
    poll(cli, sid, lambda s: s["jobs"][0]["status"] == "running")
    rc, text, _ = cli("cleanup", sid, "--yes")
    assert rc == 1 and "still running job 1 on i-" in text and "--kill-running" in text
    assert leftovers(boto3_client, sid).instances  # not terminated
    rc, text, err = cli("cleanup", sid, "--yes", "--kill-running", "--force")
    assert rc == 0, text + err
    assert "terminated instance i-" in text
    rc, text, _ = cli("check", sid, "--json")
    job = json.loads(text)["jobs"][0]
    assert job["status"] == "killed" and "ended by awsac cleanup" in job["error"]
    audit(cli, boto3_client, sid)


def test_a_start_that_would_ask_creates_nothing_before_the_answer(
    cli, session_dir, boto3_client, monkeypatch
) -> None:
    from awsac_tui import records

    d = session_dir()
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal: the answer is no
    s3 = boto3_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    before = (
        {r.session_id for r in records.list_records()},
        {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])},
        boto3_client("sdb").list_domains().get("DomainNames", []),
    )
    rc, text, err = cli("start", str(d / "session.toml"))
    assert rc == 1 and "start cancelled: nothing was created" in err
    after = (
        {r.session_id for r in records.list_records()},
        {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])},
        boto3_client("sdb").list_domains().get("DomainNames", []),
    )
    assert after == before
    assert "proceed?" in text  # the question came before anything was created


def test_escaping_keys_are_refused_and_nothing_is_written_outside(
    cli, session_dir, tmp_path: Path, boto3_client
) -> None:
    sid = _session(cli, session_dir)
    outside = tmp_path / "outside"
    outside.mkdir()
    s3 = boto3_client("s3")
    hostile = [
        f"{sid}/{outside}/ESCAPED_absolute.txt",  # SID//tmp/...: an absolute part
        f"{sid}/../ESCAPED_dotdot.txt",
        f"{sid}/sub/../../ESCAPED_inner.txt",
        f"{sid}/link/ESCAPED_through_link.txt",  # through a symlink the user has there
    ]
    for key in hostile:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"escaped")
    out = tmp_path / "res"
    target = out / f"session-{sid}"
    target.mkdir(parents=True)
    (target / "link").symlink_to(outside)
    existing = outside / "ESCAPED_absolute.txt"
    existing.write_text("the user's own file")
    rc, text, err = cli("results", sid, "-o", str(out), "--overwrite")
    assert rc == 1, text + err
    assert "4 refused" in text
    for key in hostile:
        assert f"refused {key!r}" in text
    assert existing.read_text() == "the user's own file"
    assert sorted(p.name for p in outside.iterdir()) == ["ESCAPED_absolute.txt"]
    assert not list(tmp_path.rglob("ESCAPED_dotdot.txt")) and not list(
        tmp_path.rglob("ESCAPED_inner.txt")
    )
    assert (target / "results_job_1.tar.bz2").is_file()  # the rest is downloaded

    # logs: a bundle whose member would escape is skipped and named
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:bz2") as tar:
        info = tarfile.TarInfo("../../evil.log")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    s3.put_object(Bucket=BUCKET, Key=f"{sid}/stdouterr_job_1.tar.bz2", Body=data.getvalue())
    rc, text, err = cli("logs", sid, "1")
    assert "evil" not in text and "'../../evil.log' contains '..'" in err
    rc, _, _ = cli("cleanup", sid, "--yes", "--force")
    assert rc == 0
    audit(cli, boto3_client, sid)


def _client_process(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    root = Path(__file__).resolve().parents[2]
    full = {**os.environ, **env, "PYTHONPATH": f"{root}{os.pathsep}{root / 'agent'}"}
    return subprocess.Popen(
        [sys.executable, "-m", "awsac_tui.cli", *args],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_kill_9_during_the_upload_then_cleanup_leaves_no_upload_and_no_temp_file(
    cli, session_dir, boto3_client
) -> None:
    from awsac_tui import records

    d = session_dir()
    (d / "data.bin").write_bytes(os.urandom(10 << 20))  # a multipart upload of 2 parts
    s3 = boto3_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    before = {r.session_id for r in records.list_records()}
    # the first part goes through, the second hangs: the client is killed with parts in S3
    proc = _client_process(
        ["start", str(d / "session.toml"), "--yes"],
        {"AWSAC_FAULTS": "s3:UploadPart:skip=1:delay=120"},
    )
    try:

        def upload_with_a_part() -> list[dict]:
            ups = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads") or []
            return [
                u
                for u in ups
                if s3.list_parts(Bucket=BUCKET, Key=u["Key"], UploadId=u["UploadId"]).get("Parts")
            ]

        (up,) = wait_for(upload_with_a_part, 180, "the archive upload to hold a part")
    finally:
        proc.kill()
        proc.wait()
    (sid,) = {r.session_id for r in records.list_records()} - before
    assert up["Key"].startswith(f"{sid}/")
    assert scratch_left(), "the killed start should have left its archive (the sweep's work)"
    rc, text, err = cli("cleanup", sid, "--yes")
    assert rc == 0, text + err
    assert f"aborted unfinished upload of s3://{BUCKET}/{up['Key']} (8.0 MiB of parts)" in text
    assert "1 unfinished upload(s) holding 8.0 MiB" in text
    assert not (s3.list_multipart_uploads(Bucket=BUCKET, Prefix=f"{sid}/").get("Uploads"))
    assert scratch_left() == []
    audit(cli, boto3_client, sid, launched=False)


def test_cleanup_during_an_upload_leaves_no_object(
    cli, session_dir, boto3_client, local_cloud
) -> None:
    from awsac_tui.local import service
    from awsac_tui.local.runner import KILL_GRACE_S

    big = (
        "#!/bin/sh\necho making a big result\n"
        "dd if=/dev/urandom of=big.bin bs=1M count=24 2>/dev/null\n"  # 2 parts of 16 MiB at most
        "tar cf results.tar.bz2 big.bin\n"
    )
    # the agent's upload of the result: its first part goes, then each part waits 120 s
    d = session_dir(scripts={"a.sh": big}, faults="s3:UploadPart:skip=1:delay=120")
    # the agent, stuck in its upload, ends only at the SIGKILL after the shutdown grace: 2 s
    # here, not the 10 s this test would wait out
    service.configure(local_cloud, shutdown_grace=2.0)
    try:
        sid = start(cli, d)
    finally:
        service.configure(local_cloud, shutdown_grace=KILL_GRACE_S)
    s3 = boto3_client("s3")
    wait_for(
        lambda: s3.list_multipart_uploads(Bucket=BUCKET, Prefix=f"{sid}/").get("Uploads"),
        180,
        "the agent to start uploading the result",
    )
    rc, text, err = cli("cleanup", sid, "--yes", "--force")
    assert rc == 0, text + err
    assert "aborted unfinished upload" in text
    assert leftovers(boto3_client, sid) == Leftovers([], [], [], [])
    # and none appears later: the instance and every process of it are gone
    wait_for(lambda: not service.instance_processes(), 60, "the instance's processes to end")
    assert leftovers(boto3_client, sid) == Leftovers([], [], [], [])
    audit(cli, boto3_client, sid)


SECRETS = {
    "GITHUB_TOKEN": "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2",
    "MY_DB_PASSWORD": "pw-of-the-database-7731",
    "OPENAI_API_KEY": "sk-proj-" + "Qq1Ww2Ee3Rr4Tt5Yy6Uu7Ii8",
    "SLACK_BOT_TOKEN": "xoxb-2222222222-3333333333-" + "ZzYyXxWwVvUu",
    "APP_SECRET": "the-app-secret-value-99",
}
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhdGxhcy11c2VyIn0.c2lnbmF0dXJlLW9mLXRoZS1qd3Q"
PEM_BODY = "MIIEpQIBAAKCAQEAfakebodyofaprivatekeyline1"


def test_a_job_that_prints_env_and_secrets_leaves_no_secret_in_any_object(
    cli, session_dir, boto3_client, monkeypatch, tmp_path: Path
) -> None:
    for name, value in SECRETS.items():  # in the user's shell: must not reach the instance
        monkeypatch.setenv(name, value)

    def made(value: str) -> str:  # built at run time: the script itself holds no secret
        half = len(value) // 2
        return f"\"$(printf '%s%s' '{value[:half]}' '{value[half:]}')\""

    printing = (
        "#!/bin/sh\nenv\n"
        + "".join(f"echo {k}={made(v)}\n" for k, v in SECRETS.items())
        + f"echo Authorization: Bearer {made(JWT)}\n"
        + f"printf '%s\\n' '-----BEGIN RSA PRIVATE KEY-----' {made(PEM_BODY)} "
        "'-----END RSA PRIVATE KEY-----'\n"
        + "echo data > out.txt\ntar cjf results.tar.bz2 out.txt\n"
    )
    d = session_dir(scripts={"a.sh": printing})
    sid = start(cli, d)
    poll(cli, sid, all_done, timeout=120)
    s3 = boto3_client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{sid}/")["Contents"]]
    blobs = []
    for key in keys:
        data = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        blobs.append((key, data))
        if key.endswith(".tar.bz2"):
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                for m in tar.getmembers():
                    if m.isfile():
                        blobs.append((f"{key}:{m.name}", tar.extractfile(m).read()))
    log = next(b for k, b in blobs if k.endswith("stdouterr_job_1.log")).decode()
    assert "[REDACTED]" in log and "BEGIN RSA PRIVATE KEY" in log
    for key, data in blobs:
        for secret in [*SECRETS.values(), JWT, PEM_BODY]:
            assert secret.encode() not in data, f"{secret} in {key}"

    # a job directory holding .ssh/id_rsa: refused before anything is uploaded
    other = tmp_path / "with_key"
    other.mkdir()
    for p in d.iterdir():
        if p.is_file():
            (other / p.name).write_bytes(p.read_bytes())
    (other / ".ssh").mkdir()
    (other / ".ssh" / "id_rsa").write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}\n")
    rc, _, err = cli("start", str(other / "session.toml"), "--yes")
    assert rc == 2 and ".ssh/id_rsa: looks like a credential file" in err
    rc, _, _ = cli("cleanup", sid, "--yes", "--force")
    assert rc == 0
    audit(cli, boto3_client, sid)
