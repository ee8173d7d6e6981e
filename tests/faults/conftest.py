"""Fixtures of the fault, bad-input and security tests: the CLI in-process and session builders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def release_snapshot(local_cloud: Any) -> str:
    """The eventgen example's release/ as a local snapshot (made once per worker)."""
    from awsac_tui.local import service

    from .helpers import EVENTGEN

    return service.make_snapshot(EVENTGEN / "release", "fault tests: eventgen release")


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


@pytest.fixture
def client_faults() -> Iterator[Callable[[str], Any]]:
    """Set the client's fault rules for one test (reset afterwards); returns the plan."""
    from awsac_agent import faults

    yield faults.reset
    faults.reset("")


@pytest.fixture
def session_dir(tmp_path: Path, local_cloud: Any, release_snapshot: str) -> Callable[..., Path]:
    """Factory: a job directory with session.toml for the local cloud (see helpers.make_session)."""
    from .helpers import make_session

    def make(**kw: Any) -> Path:
        return make_session(tmp_path, local_cloud, release_snapshot, **kw)

    return make
