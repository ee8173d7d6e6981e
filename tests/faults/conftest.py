"""Fixtures of the fault, bad-input and security tests: the CLI in-process and session builders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


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
