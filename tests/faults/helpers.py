"""Shared helpers of tests/faults: session directories, polling through the CLI, and the audit."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from awsac_agent.status import TERMINAL
from cloud_audit import Leftovers, leftovers_in, scratch_left
from fast_autorun import fast_autorun
from polling import check, poll, poll_text, wait_for  # noqa: F401 - the tests import them from here

ROOT = Path(__file__).resolve().parents[2]
EVENTGEN = ROOT / "examples" / "eventgen"
BUCKET = "awsac-fault-tests"

RESULTS_JOB = (
    "#!/bin/sh\necho making results\necho data > out.txt\ntar cjf results.tar.bz2 out.txt\n"
)
LONG_JOB = "#!/bin/sh\necho long job started\nwhile true; do sleep 1; done\n"

Cli = Callable[..., tuple[int, str, str]]


def make_session(
    tmp: Path,
    info: Any,
    snapshot: str,
    *,
    jobs: str = "@SNAP@;a.sh;1\n",
    scripts: dict[str, str] | None = None,
    faults: str | None = None,
    store: str = "s3",
    instance_type: str = "c5.large",
    extra_toml: str = "",
    name: str = "job",
    autorun_extra: str = "",
) -> Path:
    """A job directory with session.toml for the local cloud; ``faults`` goes to awsac_faults.cfg."""
    d = tmp / name
    d.mkdir()
    (d / "jobs.cfg").write_text(jobs.replace("@SNAP@", snapshot))
    for n, body in (scripts or {"a.sh": RESULTS_JOB}).items():
        (d / n).write_text(body)
    (d / "awsac_all_instances_autorun.sh").write_text(fast_autorun(autorun_extra))
    if faults is not None:
        (d / "awsac_faults.cfg").write_text(faults + "\n")
    (d / "session.toml").write_text(
        f'shortdescr = "faults"\ninstance_type = "{instance_type}"\nimage_id = "{info.image_id}"\n'
        f'image_owner = "123456789012"\nbucket = "{BUCKET}"\nstatus_store = "{store}"\n'
        f"{extra_toml}\n[cloud]\nlocal = true\n"
    )
    return d


def start(cli: Cli, job_dir: Path, *extra: str) -> str:
    """``awsac start`` the session in ``job_dir``; returns its id."""
    rc, out, err = cli("start", str(job_dir / "session.toml"), "--yes", "--json", *extra)
    assert rc == 0, err
    return json.loads(out)["session_id"]


def statuses(snap: dict[str, Any]) -> list[str]:
    return [j["status"] for j in snap["jobs"]]


def all_done(snap: dict[str, Any]) -> bool:
    """Every job terminal and every instance terminated."""
    return all(j["status"] in TERMINAL for j in snap["jobs"]) and all(
        i["state"] == "terminated" for i in snap["instances"]
    )


# ----------------------------------------------------------------------------- the audit


def leftovers(boto3_client: Callable[[str], Any], sid: str, bucket: str = BUCKET) -> Leftovers:
    """Live instances, volumes and objects still carrying session ``sid`` (the fault tests' bucket)."""
    return leftovers_in(boto3_client, sid, bucket)


def audit(
    cli: Cli,
    boto3_client: Callable[[str], Any],
    sid: str,
    *,
    uploaded: set[str] = frozenset(),
    cleanup: bool = False,
    launched: bool = True,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """The end of every fault test: nothing lost, nothing leaked.

    With ``cleanup`` (a session that cannot end by itself), ``awsac cleanup`` first removes its
    instances and volumes. Then waits until the session has ended (every job terminal, every
    instance terminated) and asserts each job has a status a user can read, with a reason when it
    did not finish; no volume and no running instance tagged with the session is left; every
    object in ``uploaded`` (keys under the session prefix) is still there. With ``cleanup``, a
    full ``awsac cleanup`` then leaves nothing tagged at all. ``launched=False`` (a start killed
    before RunInstances): no instance may exist, and the jobs never ran. Returns the last snapshot.
    """
    if cleanup:
        rc, out, err = cli(
            "cleanup", sid, "--yes", "--kind", "instances", "--kind", "volumes", "--kill-running"
        )
        assert rc == 0, out + err
    if launched:
        snap = poll(cli, sid, all_done, timeout)
    else:
        snap = check(cli, sid)
        assert snap["instances"] == [], "a start killed before RunInstances launched instances"
    for j in snap["jobs"] if launched else ():
        assert j["status"] in TERMINAL, j
        if j["status"] != "finished":
            assert (j.get("error") or "").strip(), (
                f"job {j['jobnr']} is {j['status']} with no reason"
            )
    left = leftovers(boto3_client, sid)
    assert left.instances == [], f"instances left running: {left.instances}"
    assert left.volumes == [], f"volumes left: {left.volumes}"
    assert left.uploads == [], f"unfinished multipart uploads: {left.uploads}"
    missing = {k for k in uploaded if f"{sid}/{k}" not in left.objects}
    assert not missing, f"uploaded objects lost: {missing}"
    if cleanup:
        rc, out, err = cli("cleanup", sid, "--yes", "--force")
        assert rc == 0, out + err
        assert leftovers(boto3_client, sid) == Leftovers([], [], [], [])
    assert scratch_left() == [], "a start left temporary files"
    return snap


def console(boto3_client: Callable[[str], Any], instance_id: str) -> str:
    import base64

    out = boto3_client("ec2").get_console_output(InstanceId=instance_id).get("Output") or ""
    try:
        return base64.b64decode(out, validate=True).decode("utf-8", errors="replace")
    except ValueError:  # already decoded by the SDK
        return out


def object_text(boto3_client: Callable[[str], Any], sid: str, key: str) -> str:
    body = boto3_client("s3").get_object(Bucket=BUCKET, Key=f"{sid}/{key}")["Body"].read()
    return body.decode("utf-8", errors="replace")


def tar_member(boto3_client: Callable[[str], Any], sid: str, key: str, member: str) -> str:
    import io
    import tarfile

    data = boto3_client("s3").get_object(Bucket=BUCKET, Key=f"{sid}/{key}")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:bz2") as tar:
        f = tar.extractfile(member)
        assert f is not None
        return f.read().decode("utf-8", errors="replace")
