"""Make the client (repo root) and the agent (agent/) importable without installing awsac,
and share the local cloud with every test that needs one (fixture ``local_cloud``)."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "agent"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


@pytest.fixture(scope="session")
def local_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A running local cloud (boot delay 0) with its own state dir per xdist worker.

    Yields a ``LocalCloudInfo``; stops the service at the end and checks no process is left.
    """
    from awsac_tui.local import service
    from awsac_tui.local.common import pid_alive

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    state = tmp_path_factory.mktemp(f"awsac-state-{worker}")
    previous = os.environ.get("AWSAC_STATE_DIR")
    os.environ["AWSAC_STATE_DIR"] = str(state)
    try:
        info = service.ensure_up(boot_delay=0)
        # volumes `creating` and snapshots `pending` for 0 s: tests/local/conformance exercise it
        service.configure_ec2(info, ebs_delay=0)
        yield info
    finally:
        os.environ["AWSAC_STATE_DIR"] = str(state)
        instance_pids = service._instance_pids()
        service.down()
        if previous is None:
            os.environ.pop("AWSAC_STATE_DIR", None)
        else:
            os.environ["AWSAC_STATE_DIR"] = previous
    left = [pid for pid in [info.pid, *instance_pids] if pid_alive(pid)]
    assert not left, f"processes left after down(): {left}"


@pytest.fixture(autouse=True)
def _no_instance_outlives_its_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """The local cloud is shared by every test of a worker; what one test leaves running (a
    failed test's instances, a long job) would go on polling the emulator for the rest of the
    run. After each test that used it, every instance still up is terminated."""
    yield
    if "local_cloud" not in request.fixturenames:
        return
    from awsac_tui.local.service import boto3_client

    ec2 = boto3_client(request.getfixturevalue("local_cloud"), "ec2")
    states = ["pending", "running", "stopping", "stopped"]
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-state-name", "Values": states}]
    )
    ids = [i["InstanceId"] for p in pages for r in p["Reservations"] for i in r["Instances"]]
    if ids:
        ec2.terminate_instances(InstanceIds=ids)


@pytest.fixture
def aws_env(local_cloud: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point boto3 and the AWS CLI at the local cloud for one test (environment variables)."""
    from awsac_tui.local.service import client_env

    env = client_env(local_cloud)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWSAC_STATE_DIR", local_cloud.state_dir)
    return env


@pytest.fixture
def boto3_client(local_cloud: Any) -> Callable[[str], Any]:
    """Factory of boto3 clients bound to the local cloud: ``boto3_client("ec2")``.

    One client per service for the test (boto3 clients are thread-safe): the polls call this
    every few tenths of a second, and each new client costs 30 ms of CPU (its methods are built
    from the service model). Per test, so a hook a test registers on one ends with it."""
    from awsac_tui.local import service

    return functools.cache(lambda service_name: service.boto3_client(local_cloud, service_name))


EVENTGEN_RELEASE = Path(__file__).resolve().parents[1] / "examples" / "eventgen" / "release"


@pytest.fixture(scope="session")
def release_snapshot(local_cloud: Any) -> str:
    """The eventgen example's release/ as a local snapshot (made once per worker)."""
    from awsac_tui.local import service

    return service.make_snapshot(EVENTGEN_RELEASE, "tests: eventgen release")


@pytest.fixture
def cli(
    aws_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """Run ``awsac ARGS`` in-process as a user types it: (exit code, stdout, stderr)."""
    from awsac_tui import cli as cli_mod

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = cli_mod.main(list(argv))
        out, err = capsys.readouterr()
        return rc, out, err

    return run
