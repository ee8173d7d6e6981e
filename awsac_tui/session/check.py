"""Check a session: one Monitor refresh, as the headless ``check`` prints it."""

from __future__ import annotations

from typing import Any

from ..cloud import Cloud
from ..monitor import Monitor
from ..records import SessionRecord
from ..views import SessionSnapshot
from .common import cloud_for


async def check(
    record: SessionRecord, cloud: Cloud | None = None, **monitor_kw: Any
) -> SessionSnapshot:
    """One refresh of the session: a SessionSnapshot."""
    async with cloud_for(record, cloud) as c:
        return await Monitor(record, c, **monitor_kw).refresh()
