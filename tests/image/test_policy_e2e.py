"""A whole local session with every AWS call recorded: each agent call is allowed by the
instance policy, each client call by the client policy, and neither grants an action nobody calls."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import awscalls
import policycheck
import pytest
from polling import wait_for

from .helpers import IAM, ROOT

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

EXAMPLE = ROOT / "examples" / "eventgen"
BUCKET = "atlassessions"

# Grants this session does not exercise, and why they stay (any other unused grant fails the test,
# and so does an entry here that the session did use: keep the list exact).
NOT_EXERCISED = {
    "client": {
        "s3:AbortMultipartUpload": "only when an archive upload fails half-way",
        "ec2:DetachVolume": "cleanup, only when a volume outlived its instance",
        "ec2:DeleteVolume": "cleanup, only when a volume outlived its instance",
        "iam:PassRole": "only with instance_profile in the spec (the local cloud needs none)",
        "sdb:PutAttributes": "kill requests, lost marks and retries (this session needs none)",
    },
    "agent": {
        "sdb:CreateDomain": "only when the client did not make the status domain first",
        "sdb:PutAttributes": "queue mode's conditional claims (this session is static)",
        "sdb:Select": "queue mode's pending-job candidates (this session is static)",
    },
}


@pytest.fixture
def recorded_cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Path]]:
    """A local cloud of our own whose service and instances load the call recorder."""
    from awsac_tui.local import service

    log = tmp_path / "aws-calls.jsonl"
    monkeypatch.setenv("AWSAC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PYTHONPATH", str(IAM / "recorder"))
    monkeypatch.setenv(awscalls.ENV_FILE, str(log))
    monkeypatch.setenv(awscalls.ENV_COMPONENT, "localcloud")  # the service's own calls
    # The agents' control reads (s3:ListBucket on control/) start at a random point of the poll
    # interval: a short one puts the first read before the jobs end, whatever the machine's speed.
    monkeypatch.setenv("AWSAC_POLL_SECONDS", "0.5")
    info = service.ensure_up(boot_delay=0)
    try:
        monkeypatch.delenv(awscalls.ENV_COMPONENT)
        monkeypatch.delenv("PYTHONPATH")
        for name, value in service.client_env(info).items():
            monkeypatch.setenv(name, value)
        yield info, log
    finally:
        awscalls.uninstall()
        service.down()


def _job_dir(dest: Path, info: Any, snapshot: str, store: str) -> Path:
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("release"))
    cfg = dest / "jobs.cfg"
    cfg.write_text(cfg.read_text().replace("snap-00000000", snapshot))
    toml = dest / "session.toml"
    text = toml.read_text().replace("ami-00000000", info.image_id)
    toml.write_text(text.replace('status_store = "simpledb"', f'status_store = "{store}"'))
    return dest


def _ended(snap: dict[str, Any]) -> dict[str, Any] | None:
    """The snapshot once every instance of the session has terminated, else None."""
    instances = snap["instances"]
    return snap if instances and all(i["state"] == "terminated" for i in instances) else None


def test_policies_match_the_calls_of_a_session(
    recorded_cloud: tuple[Any, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from awsac_tui import cli
    from awsac_tui.local import service

    info, log = recorded_cloud
    snapshot = service.make_snapshot(EXAMPLE / "release", "policy test: eventgen release")
    log.unlink(missing_ok=True)  # from here on: only the sessions' calls
    awscalls.install(str(log))

    def run(*argv: str) -> str:
        capsys.readouterr()
        rc = cli.main(list(argv))
        out, err = capsys.readouterr()
        assert rc in (0, 1), f"awsac {' '.join(argv)}: {rc}\n{out}{err}"
        return out

    # One session per status store kind: the instance policy serves both. Both run at once.
    sids = {}
    for store in ("simpledb", "s3"):
        job = _job_dir(tmp_path / f"eventgen-{store}", info, snapshot, store)
        started = run("start", str(job / "session.toml"), "--yes", "--json")
        sids[store] = json.loads(started)["session_id"]
    for store, sid in sids.items():
        snap = wait_for(
            lambda sid=sid: _ended(json.loads(run("check", sid, "--json"))),
            240,
            f"session {sid} to end",
            every=0.3,
        )
        assert [j["status"] for j in snap["jobs"]] == ["finished"] * 4
        outdir = tmp_path / f"results-{store}"
        outdir.mkdir()
        run("results", sid, "-o", str(outdir))
        run("logs", sid, "3")
        run("console", sid, snap["instances"][0]["instance_id"])
        run("terminate", sid, snap["instances"][0]["instance_id"])  # idempotent when it is gone
        run("kill", sid, "1")  # too late for job 1: still the kill request's calls
        run("cleanup", sid, "--yes")
    awscalls.uninstall()

    calls = [c for c in policycheck.read_calls(log) if c.component in ("agent", "client")]
    by = {comp: [c for c in calls if c.component == comp] for comp in ("agent", "client")}
    assert by["agent"] and by["client"]
    for comp, path in (
        ("agent", policycheck.INSTANCE_POLICY),
        ("client", policycheck.CLIENT_POLICY),
    ):
        policy = policycheck.load_policy(path, BUCKET)
        assert policycheck.denied_calls(policy, by[comp]) == [], f"{path.name} misses these"
        unused = set(policycheck.unused_grants(policy, by[comp]))
        assert unused == set(NOT_EXERCISED[comp]), f"{path.name}: unused grants {sorted(unused)}"
