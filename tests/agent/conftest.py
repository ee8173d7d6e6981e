"""Fixtures of the agent's tests: the eventgen release snapshot on the local cloud."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def release_snapshot(local_cloud: Any) -> str:
    """A snapshot in the local cloud holding the eventgen example's stand-in release."""
    from agent_e2e_helpers import EVENTGEN

    from awsac_tui.local import service

    return service.make_snapshot(EVENTGEN / "release", "eventgen stand-in release")
