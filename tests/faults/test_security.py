"""Security: no secret in anything awsac writes, IMDSv2, hostile user values, owner-only files."""

from __future__ import annotations

import base64
import io
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest
from awsac_agent.sessionid import session_tag_filter

from .helpers import BUCKET, ROOT, audit, console, make_session, start, wait_for

FAKE_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
FAKE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
FAKE_TOKEN = "IQoJb3JpZ2luX2VjEHoaCXVzLWVhc3QtMSJHMEUCIQD5examplelongtokenvalue1234567890abcdef"
SECRETS = (FAKE_KEY_ID, FAKE_SECRET, FAKE_TOKEN)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# The job builds the keys at run time (so the archive itself holds no secret), puts them in its
# environment and prints them every way a careless script does.
LEAKY_JOB = f"""#!/bin/sh
AWS_ACCESS_KEY_ID=$(echo {_b64(FAKE_KEY_ID)} | base64 -d)
AWS_SECRET_ACCESS_KEY=$(echo {_b64(FAKE_SECRET)} | base64 -d)
AWS_SESSION_TOKEN=$(echo {_b64(FAKE_TOKEN)} | base64 -d)
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
echo "AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID"
echo "aws_secret_access_key = $AWS_SECRET_ACCESS_KEY"
echo "aws_session_token = $AWS_SESSION_TOKEN"
env | sort
echo "$AWS_SECRET_ACCESS_KEY" > secret.txt
echo harmless line
tar cjf results.tar.bz2 secret.txt
"""


def _texts_of(data: bytes) -> list[str]:
    """The text of an object: itself, and when it is a .tar.bz2, each member's content."""
    out = [data.decode("utf-8", errors="replace")]
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for m in tar.getmembers():
                f = tar.extractfile(m)
                if f is not None:
                    out.append(f.read().decode("utf-8", errors="replace"))
    except (tarfile.TarError, EOFError, OSError):
        pass
    return out


def _no_secret(where: str, text: str) -> None:
    for s in SECRETS:
        assert s not in text, f"{s[:8]}... found in {where}"


@pytest.mark.slow
@pytest.mark.e2e
def test_no_secret_in_any_object_record_console_or_screenshot(
    cli, tmp_path: Path, local_cloud: Any, release_snapshot: str, boto3_client, monkeypatch
) -> None:
    # the user's own environment holds (fake) keys and a session token as well
    monkeypatch.setenv("AWS_SESSION_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("AWSAC_TEST_SECRET", FAKE_SECRET)
    d = make_session(tmp_path, local_cloud, release_snapshot, scripts={"a.sh": LEAKY_JOB})
    rc, out, err = cli("start", str(d / "session.toml"), "--yes")
    assert rc == 0, err
    printed = [out + err]
    import re

    sid = re.search(r"session id: (\S+)", out).group(1)
    snap = audit(
        cli, boto3_client, sid, uploaded={"results_job_1.tar.bz2", "stdouterr_job_1.tar.bz2"}
    )
    assert snap["jobs"][0]["status"] == "finished"
    for args in (("check", sid), ("check", sid, "--json"), ("logs", sid, "1")):
        rc, out, err = cli(*args)
        printed.append(out + err)
    outdir = tmp_path / "results"
    outdir.mkdir()
    rc, out, err = cli("results", sid, "-o", str(outdir))
    assert rc == 0, err
    printed.append(out + err)
    for text in printed:
        _no_secret("the client's output", text)
    assert "harmless line" in printed[-2]  # the log really was shown
    # every object the session uploaded, the results too (the user's own file is redacted as well)
    s3 = boto3_client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{sid}/")["Contents"]]
    assert len(keys) >= 5
    for key in keys:
        for text in _texts_of(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()):
            if key.endswith("results_job_1.tar.bz2"):
                continue  # the job's own results are its business; the log around them is ours
            _no_secret(key, text)
    # the status store, the session record, the console, downloaded logs, screenshots
    from awsac_tui import records

    rec = records.load_record(sid)
    _no_secret("the session record", Path(rec.path).read_text())
    for iid in {i["instance_id"] for i in snap["instances"]}:
        _no_secret(f"console of {iid}", console(boto3_client, iid))
    for p in (outdir / f"session-{sid}").iterdir():
        if p.name != "results_job_1.tar.bz2":
            for text in _texts_of(p.read_bytes()):
                _no_secret(str(p), text)
    for svg in (ROOT / "screenshots").glob("*.svg"):
        _no_secret(str(svg), svg.read_text(errors="replace"))
    # owner-only: the record and everything downloaded
    assert stat.S_IMODE(Path(rec.path).stat().st_mode) == 0o600
    target = outdir / f"session-{sid}"
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in target.iterdir())
    # IMDSv2 is required on what awsac launched
    ec2 = boto3_client("ec2")
    filt = [session_tag_filter(sid)]
    launched = [
        i for r in ec2.describe_instances(Filters=filt)["Reservations"] for i in r["Instances"]
    ]
    assert launched and all(i["MetadataOptions"]["HttpTokens"] == "required" for i in launched)
    rc, _, _ = cli("cleanup", sid, "--yes", "--force")
    assert rc == 0


def test_imdsv2_required_by_the_local_metadata_endpoint(local_cloud: Any, boto3_client) -> None:
    """Without a token the local instance metadata refuses, as EC2 with HttpTokens=required."""
    import json
    import urllib.error
    import urllib.request

    ec2 = boto3_client("ec2")
    resp = ec2.run_instances(
        ImageId=local_cloud.image_id,
        MinCount=1,
        MaxCount=1,
        UserData="not ours",
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
    )
    iid = resp["Instances"][0]["InstanceId"]
    try:
        assert resp["Instances"][0]["MetadataOptions"]["HttpTokens"] == "required"
        record = Path(local_cloud.state_dir) / "local" / "instances" / iid / "instance.json"
        wait_for(record.exists, 20, "the instance to boot")
        imds = json.loads(record.read_text())["imds_endpoint"].rstrip("/")
        with pytest.raises(urllib.error.HTTPError) as no_token:
            urllib.request.urlopen(f"{imds}/latest/meta-data/instance-id", timeout=5)
        assert no_token.value.code == 401
        put = urllib.request.Request(
            f"{imds}/latest/api/token",
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"},
        )
        token = urllib.request.urlopen(put, timeout=5).read().decode()
        got = urllib.request.Request(
            f"{imds}/latest/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": token}
        )
        assert urllib.request.urlopen(got, timeout=5).read().decode() == iid
    finally:
        ec2.terminate_instances(InstanceIds=[iid])


HOSTILE = "x'\"`id`$(touch PWNED)"


def _set_toml(d: Path, key: str, value: str) -> None:
    import re

    toml = d / "session.toml"
    text = toml.read_text()
    line = f"{key} = {_toml_str(value)}"
    if re.search(rf"^{key} = ", text, flags=re.M):
        text = re.sub(rf"^{key} = .*$", lambda m: line, text, flags=re.M)
    else:
        text = line + "\n" + text
    toml.write_text(text)


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


TOML_FIELDS = [
    "shortdescr",
    "bucket",
    "image_id",
    "image_owner",
    "instance_type",
    "key_name",
    "ssh_user",
]
JOBS_FIELDS = ["snapshot", "script"]


@pytest.mark.parametrize("field", TOML_FIELDS + JOBS_FIELDS)
def test_hostile_value_in_a_user_field_is_rejected_and_runs_nothing(
    field: str,
    cli,
    tmp_path: Path,
    local_cloud: Any,
    release_snapshot: str,
    boto3_client,
    monkeypatch,
) -> None:
    from .test_bad_input import _everything

    monkeypatch.chdir(tmp_path)
    d = make_session(tmp_path, local_cloud, release_snapshot)
    if field in TOML_FIELDS:
        _set_toml(d, field, HOSTILE)
    elif field == "snapshot":
        (d / "jobs.cfg").write_text(f"{HOSTILE};a.sh;1\n")
    else:
        (d / "jobs.cfg").write_text(f"-;{HOSTILE};1\n")
    before = _everything(boto3_client)
    rc, out, err = cli("start", str(d / "session.toml"), "--yes")
    assert rc == 2, out + err
    message = err.strip()
    assert message.startswith("awsac: ") and "Traceback" not in message
    assert field in message or HOSTILE in message or "script" in message, message
    assert _everything(boto3_client) == before
    assert not list(tmp_path.rglob("PWNED")) and not (ROOT / "PWNED").exists()


@pytest.mark.slow
@pytest.mark.e2e
def test_hostile_tag_values_reach_ec2_verbatim_and_no_shell(
    cli, tmp_path: Path, local_cloud: Any, release_snapshot: str, boto3_client, monkeypatch
) -> None:
    """Tags are free text: they go to EC2 as they are and never through a shell."""
    monkeypatch.chdir(tmp_path)
    d = make_session(tmp_path, local_cloud, release_snapshot)
    toml = d / "session.toml"
    toml.write_text(toml.read_text() + f"\n[tags]\nnote = {_toml_str(HOSTILE)}\n")
    sid = start(cli, d)
    ec2 = boto3_client("ec2")
    filt = [session_tag_filter(sid)]
    (inst,) = [
        i for r in ec2.describe_instances(Filters=filt)["Reservations"] for i in r["Instances"]
    ]
    assert {"Key": "note", "Value": HOSTILE} in inst["Tags"]
    audit(cli, boto3_client, sid, uploaded={"results_job_1.tar.bz2"})
    state = Path(local_cloud.state_dir)
    assert not list(tmp_path.rglob("PWNED")) and not list(state.rglob("PWNED"))


def test_simpledb_select_quotes_hostile_values(boto3_client) -> None:
    """Values and names reaching a SimpleDB select are quoted: a hostile value matches itself only."""
    from awsac_agent.status import quote_name, quote_value

    sdb = boto3_client("sdb")
    domain = "awsac-quoting-test"
    sdb.create_domain(DomainName=domain)
    sdb.put_attributes(
        DomainName=domain, ItemName="evil", Attributes=[{"Name": "v", "Value": HOSTILE}]
    )
    sdb.put_attributes(
        DomainName=domain, ItemName="plain", Attributes=[{"Name": "v", "Value": "x"}]
    )
    expr = f"select * from {quote_name(domain)} where v = {quote_value(HOSTILE)}"
    items = sdb.select(SelectExpression=expr).get("Items", [])
    assert [i["Name"] for i in items] == ["evil"]
    injected = f"select * from {quote_name(domain)} where v = {quote_value(chr(39) + ' or v = ' + chr(39) + 'x')}"
    assert sdb.select(SelectExpression=injected).get("Items", []) == []
    assert quote_name("a`b") == "`a``b`"
    sdb.delete_domain(DomainName=domain)
