"""The client's async side of the status store: read jobs, request kills, reset, delete.

Two backends over the same record format (``awsac_agent.status``): SimpleDB and S3-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from awsac_agent.errors import FormatError
from awsac_agent.status import STORE_S3, STORE_SIMPLEDB, JobRecord, store_kinds_text

from ..cloud import Cloud


@dataclass(frozen=True)
class StoreRead:
    """What one read of the store returned. ``complete``: ``records`` is every record of the
    session (a job not among them has none); otherwise only records changed since ``since``."""

    records: list[JobRecord]
    complete: bool


class StatusStore(Protocol):
    """What the client needs from a status store."""

    kind: str
    session_id: str
    # What the last read_all could not read (one line per record, naming it), for the notices.
    problems: list[str]

    async def read_all(self) -> list[JobRecord]: ...

    async def read(self, since: str | None = None) -> StoreRead:
        """Records written at or after ``since`` (an ``updated_iso`` stamp), or all for None.
        A store that cannot select by time answers with every record (``complete``); records
        that did not change are then the same objects as before."""
        ...

    async def request_kill(self, jobnr: int) -> None: ...

    async def reset(self) -> bool: ...

    async def delete_all(self) -> list[str]: ...

    async def mark_lost(self, jobnr: int, reason: str, ended: str | None = None) -> bool:
        """Set the job lost with ``reason`` unless it is terminal; ``ended``: its run's end (ISO,
        when the instance went) if the record has none."""
        ...

    async def exists(self) -> bool: ...

    async def put_pending(self, records: list[JobRecord]) -> None:
        """Create the records of a new session (pending, attempt 1) before any instance runs."""
        ...

    async def requeue(self, record: JobRecord) -> JobRecord | None:
        """The job's next attempt, pending (a retry); None when its status changed meanwhile."""
        ...


def open_store(kind: str, cloud: Cloud, session_id: str, bucket: str) -> StatusStore:
    """The status store of ``kind`` (a kind of ``status.STORE_KINDS``) for a session."""
    if kind == STORE_SIMPLEDB:
        from .simpledb import SimpleDBStore

        return SimpleDBStore(cloud, session_id, bucket)
    if kind == STORE_S3:
        from .s3 import S3Store

        return S3Store(cloud, session_id, bucket)
    raise FormatError(f"unknown status store kind {kind!r} (use {store_kinds_text(chr(39))})")


__all__ = ["StatusStore", "StoreRead", "open_store"]
