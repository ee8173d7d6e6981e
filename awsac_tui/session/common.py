"""What every session verb shares: the Cloud for a record, its status store, the question
asked before a change, and the verbs' error."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable

from awsac_agent.errors import AwsacError, CloudError

from ..cloud import Cloud
from ..records import SessionRecord
from ..spec import CloudProfile
from ..store import StatusStore, open_store

PART_SIZE = 8 * 1024 * 1024

Say = Callable[[str], None]

Progress = Callable[[int, int], None]  # (bytes done, bytes total)

Confirm = Callable[[str], bool | Awaitable[bool]]


class SessionError(AwsacError):
    """A session verb that could not be carried out."""

    exit_code = 1


def quiet(_: str) -> None:
    return None


async def ask(confirm: Confirm | None, question: str) -> bool:
    if confirm is None:
        return True
    answer = confirm(question)
    if inspect.isawaitable(answer):
        answer = await answer
    return bool(answer)


@contextlib.asynccontextmanager
async def cloud_for(
    record_or_profile: SessionRecord | CloudProfile, cloud: Cloud | None = None
) -> AsyncIterator[Cloud]:
    """The given Cloud, or a new one for the record's profile (closed on exit)."""
    if cloud is not None:
        yield cloud
        return
    prof = (
        record_or_profile.cloud
        if isinstance(record_or_profile, SessionRecord)
        else record_or_profile
    )
    async with Cloud(prof) as c:
        yield c


def store_for(record: SessionRecord, cloud: Cloud) -> StatusStore:
    """The session's status store (its kind is in the record)."""
    return open_store(record.status_store, cloud, record.session_id, record.bucket)


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.5
    while not await predicate():
        if loop.time() > deadline:
            raise CloudError(
                f"timed out after {timeout:.0f} s waiting for {what}; run cleanup again"
            )
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 5.0)
