"""The bad-input catalogue of docs/errors.md: one test per row, through ``awsac start``.

Each gives exit code 2 and one clear message naming the thing and the fix, and creates nothing:
no session record, no S3 object, no instance.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .helpers import make_session


def _replace_toml(old: str, new: str) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        toml = d / "session.toml"
        text = toml.read_text()
        assert old in text, old
        toml.write_text(text.replace(old, new))

    return edit


def _jobs(text: str) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        (d / "jobs.cfg").write_text(text)

    return edit


def _archive(kind: str) -> Callable[[Path], None]:
    """Write ``bad.<ext>`` into the job directory; the case passes it with -a."""

    def edit(d: Path) -> None:
        if kind == "zip":
            (d / "bad.zip").write_bytes(b"PK\x03\x04 not a tar.bz2")
            return
        if kind == "corrupt":
            (d / "bad.tar.bz2").write_bytes(b"BZh91AY&SY this is not really bzip2 data")
            return
        with tarfile.open(d / "bad.tar.bz2", "w:bz2") as tar:
            for name, data in (("jobs.cfg", b"-;a.sh;1\n"), ("a.sh", b"echo hi\n")):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            if kind == "dotdot":
                info = tarfile.TarInfo("../../outside.sh")
            elif kind == "absolute":
                info = tarfile.TarInfo("/etc/awsac-evil")
            else:
                info = tarfile.TarInfo("link")
                info.type = tarfile.SYMTYPE
                info.linkname = "/etc/passwd"
            info.size = 0 if kind == "link" else 4
            tar.addfile(info, io.BytesIO(b"evil"[: info.size]))

    return edit


NO_LOCAL = _replace_toml("[cloud]\nlocal = true\n", "")


@dataclass(frozen=True)
class Case:
    """One row of the catalogue: how to break the input, and what the message must say."""

    id: str
    edit: Callable[[Path], None] | None = None
    args: tuple[str, ...] = ()
    client_faults: str = ""
    says: tuple[str, ...] = ()  # the thing and the fix, all must appear
    env: dict[str, str] = field(default_factory=dict)
    patch: str = ""


CASES = [
    Case("jobs.cfg line missing a field", _jobs("-;a.sh\n"), says=("jobs.cfg", "line 1")),
    Case("count not a positive integer", _jobs("-;a.sh;0\n"), says=("jobs.cfg", "line 1", "count")),
    Case("count not a number", _jobs("-;a.sh;two\n"), says=("jobs.cfg", "line 1", "'two'")),
    Case(
        "unknown script",
        _jobs("-;nosuch.sh;1\n"),
        says=("nosuch.sh", "not in the session archive", "fix the name"),
    ),
    Case("script outside the archive", _jobs("-;../outside.sh;1\n"), says=("../outside.sh",)),
    Case(
        "n_jobs mismatch",
        _replace_toml("status_store", "n_jobs = 5\nstatus_store"),
        says=("n_jobs", "states 5 jobs", "set n_jobs = 1"),
    ),
    Case(
        "shortdescr longer than 8",
        _replace_toml('"faults"', '"muchtoolong"'),
        says=("muchtoolong", "at most 8"),
    ),
    Case(
        "shortdescr with unsafe characters",
        _replace_toml('"faults"', '"a$(id)"'),
        says=("a$(id)", "letters, digits and _"),
    ),
    Case(
        "bad bucket name",
        _replace_toml('"awsac-fault-tests"', '"Bad_Bucket"'),
        says=("Bad_Bucket", "bucket"),
    ),
    Case(
        "bucket in another account",
        client_faults="s3:HeadBucket:fail=9:403:status=403",
        says=("awsac-fault-tests", "another account", "choose a bucket of your own"),
    ),
    Case(
        "image not found",
        _replace_toml("ami-0a75ac10ca1000000", "ami-0123456789abcdef0"),
        says=("ami-0123456789abcdef0", "does not exist", "the local cloud's image is"),
    ),
    Case(
        "image not owned by the stated owner",
        _replace_toml('"123456789012"', '"999999999999"'),
        says=("999999999999", "fix image_owner"),
    ),
    Case(
        "unknown instance type",
        _replace_toml('"c5.large"', '"z9.large"'),
        says=("z9.large", "not offered by this cloud", "describe-instance-types"),
    ),
    Case(
        "archive not .tar.bz2",
        _archive("zip"),
        args=("-a", "@DIR@/bad.zip"),
        says=("bad.zip", ".tar.bz2"),
    ),
    Case(
        "archive corrupt",
        _archive("corrupt"),
        args=("-a", "@DIR@/bad.tar.bz2"),
        says=("bad.tar.bz2",),
    ),
    Case(
        "archive with ../ paths",
        _archive("dotdot"),
        args=("-a", "@DIR@/bad.tar.bz2"),
        says=("bad.tar.bz2", "../../outside.sh"),
    ),
    Case(
        "archive with absolute paths",
        _archive("absolute"),
        args=("-a", "@DIR@/bad.tar.bz2"),
        says=("bad.tar.bz2", "/etc/awsac-evil"),
    ),
    Case(
        "archive with a link out",
        _archive("link"),
        args=("-a", "@DIR@/bad.tar.bz2"),
        says=("bad.tar.bz2", "link"),
    ),
    Case(
        "max_session_hours not finite",
        _replace_toml("status_store", "max_session_hours = inf\nstatus_store"),
        says=("max_session_hours", "inf is not a finite number", "up to 8760"),
    ),
    Case(
        "a credential file in the job directory",
        lambda d: ((d / ".ssh").mkdir(), (d / ".ssh" / "id_rsa").write_text("KEY\n")),
        says=(".ssh/id_rsa", "looks like a credential file", 'include = [".ssh/id_rsa"]'),
    ),
    Case(
        "user-data over the 16 KB limit",
        patch="awsac_agent.userdata.MAX_USERDATA_BYTES",
        says=("user-data is", "over EC2's limit", "ship files in the session archive"),
    ),
    Case(
        "missing credentials",
        NO_LOCAL,
        args=("--region", "us-east-1"),
        env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_ENDPOINT_URL": ""},
        says=("No AWS credentials found", "--local", "--profile"),
    ),
    Case(
        "expired credentials",
        client_faults="ec2:*:fail=99:ExpiredToken:status=400,s3:*:fail=99:ExpiredToken:status=400",
        says=("ExpiredToken", "Refresh them"),
    ),
    Case(
        "endpoint unreachable",
        NO_LOCAL,
        args=("--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"),
        says=("http://127.0.0.1:9", "Cannot reach", "--endpoint-url"),
    ),
]


def _everything(boto3_client: Callable[[str], Any]) -> tuple[set[str], set[str], set[str]]:
    """(session records, S3 objects in every bucket, instances not terminated) right now."""
    from awsac_tui import records

    recs = {f"{r.session_id}:{r.state}" for r in records.list_records()}
    s3 = boto3_client("s3")
    objs = {
        f"{b['Name']}/{o['Key']}"
        for b in s3.list_buckets()["Buckets"]
        for o in s3.list_objects_v2(Bucket=b["Name"]).get("Contents", [])
    }
    # asked by state: the worker's cloud keeps every terminated instance of the run for an hour
    alive = ["pending", "running", "shutting-down", "stopping", "stopped"]
    inst = {
        i["InstanceId"]
        for r in boto3_client("ec2").describe_instances(
            Filters=[{"Name": "instance-state-name", "Values": alive}]
        )["Reservations"]
        for i in r["Instances"]
    }
    return recs, objs, inst


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_message_and_creates_nothing(
    case: Case,
    cli,
    tmp_path: Path,
    local_cloud: Any,
    release_snapshot: str,
    boto3_client,
    client_faults,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    d = make_session(tmp_path, local_cloud, release_snapshot)
    if case.edit:
        case.edit(d)
    for name, value in case.env.items():
        if value:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    if case.id == "missing credentials":
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        monkeypatch.delenv("AWS_PROFILE", raising=False)
    if case.patch:
        monkeypatch.setattr(case.patch, 64)
    before = _everything(boto3_client)
    client_faults(case.client_faults)
    args = [a.replace("@DIR@", str(d)) for a in case.args]
    rc, out, err = cli("start", str(d / "session.toml"), "--yes", *args)
    client_faults("")
    assert rc == 2, f"exit {rc}\n{out}\n{err}"
    assert "Traceback" not in out + err
    message = err.strip()
    assert message.startswith("awsac: ") and message.count("awsac: ") == 1, message
    for needle in case.says:
        assert needle in message, f"{needle!r} not in {message!r}"
    problems = [line for line in message.splitlines() if line.startswith("  - ")]
    assert len(problems) == len(set(problems)), f"a problem is reported twice: {message!r}"
    assert "problems:" not in message, f"one bad input, one message: {message!r}"
    print(f"{case.id}: {message}")
    after = _everything(boto3_client)
    assert after == before, "bad input created something"
