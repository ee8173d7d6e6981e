"""Fixtures of the local cloud's own tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

INSTANCE_PROG = Path(__file__).with_name("instance_prog.py")


@pytest.fixture
def prog_cloud(local_cloud: Any) -> Iterator[Any]:
    """The local cloud booting tests/local/instance_prog.py instead of the agent, for one test."""
    from awsac_tui.local import service

    before = service._side(local_cloud.endpoint, "health")
    service.configure(local_cloud, boot_command=[sys.executable, str(INSTANCE_PROG)])
    try:
        yield local_cloud
    finally:
        service.configure(
            local_cloud, boot_delay=before["boot_delay"], boot_command=before["boot_command"]
        )
