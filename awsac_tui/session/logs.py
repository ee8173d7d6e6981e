"""Read what a session printed: an instance's console output, a job's live tail or saved log
(streamed from its bundle in bounded memory, whatever its size)."""

from __future__ import annotations

import asyncio
import base64
import bz2
import collections
import contextlib
import tarfile
import time
from collections.abc import Callable

from awsac_agent import s3layout
from awsac_agent.archive import safe_relpath
from awsac_agent.status import TERMINAL, WATCH_REFRESH_SECONDS, watch_body

from ..cloud import Cloud, cloud_errors, error_code
from ..records import SessionRecord
from .common import SessionError, cloud_for, store_for
from .results import cleaned_message


async def console_output(
    record: SessionRecord, instance_id: str, *, cloud: Cloud | None = None
) -> str:
    """The instance's console output (EC2 GetConsoleOutput), '' when there is none yet."""
    async with cloud_for(record, cloud) as c:
        ec2 = await c.client("ec2")
        async with cloud_errors(f"GetConsoleOutput {instance_id}"):
            try:
                resp = await ec2.get_console_output(InstanceId=instance_id, Latest=True)
            except Exception as exc:  # noqa: BLE001
                if error_code(exc) in ("InvalidParameterValue", "UnsupportedOperation"):
                    resp = await ec2.get_console_output(InstanceId=instance_id)
                else:
                    raise
        out = resp.get("Output") or ""
        if isinstance(out, bytes):
            out = out.decode("utf-8", "replace")
        if out and not any(ch in out for ch in " \n") and len(out) % 4 == 0:
            with contextlib.suppress(ValueError):
                out = base64.b64decode(out).decode("utf-8", "replace")
        return out


class _Bz2Reader:
    """A read(n) file over ``next_chunk`` (compressed bytes, b"" at the end) that decompresses
    concatenated bzip2 streams as one, in bounded memory (for tarfile's stream mode)."""

    def __init__(self, next_chunk: Callable[[], bytes]) -> None:
        self._next = next_chunk
        self._dec = bz2.BZ2Decompressor()
        self._buf = b""
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        want = n if n >= 0 else 1 << 62
        while len(self._buf) < want and not self._eof:
            if self._dec.eof:
                rest = self._dec.unused_data
                self._dec = bz2.BZ2Decompressor()
                if rest:
                    self._buf += self._dec.decompress(rest, max(want - len(self._buf), 1 << 16))
                    continue
            if self._dec.needs_input:
                data = self._next()
                if not data:
                    self._eof = True
                    break
                self._buf += self._dec.decompress(data, max(want - len(self._buf), 1 << 16))
            else:
                self._buf += self._dec.decompress(b"", max(want - len(self._buf), 1 << 16))
        out, self._buf = self._buf[:want], self._buf[want:]
        return out


def _copy_log(read: Callable[[], bytes], jobnr: int, write: Callable[[bytes], object]) -> list[str]:
    """Stream the log member of a stdouterr bundle to ``write``; the members refused for their
    names (they would leave any directory), each with the reason."""
    refused: list[str] = []
    wanted = s3layout.stdouterr_log_name(jobnr)
    with tarfile.open(fileobj=_Bz2Reader(read), mode="r|") as tar:  # type: ignore[arg-type]
        for member in tar:
            if not member.isfile():
                continue
            rel, why = safe_relpath(member.name)
            if rel is None:
                refused.append(f"member {why}")
                continue
            if not (rel.endswith(wanted) or rel.endswith(".log")):
                continue
            fh = tar.extractfile(member)
            while fh is not None and (block := fh.read(1 << 20)):
                write(block)
            break
    return refused


async def _status(record: SessionRecord, jobnr: int, cloud: Cloud) -> str | None:
    if record.state == "cleaned":
        return next(
            (j.get("status") for j in record.final_jobs if j.get("jobnr") == str(jobnr)), None
        )
    rec = {r.jobnr: r for r in await store_for(record, cloud).read_all()}.get(jobnr)
    return rec.status if rec else None


async def saved_log(
    record: SessionRecord,
    jobnr: int,
    write: Callable[[bytes], object],
    *,
    cloud: Cloud | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> bool:
    """Stream job ``jobnr``'s saved log (its stdouterr bundle) to ``write`` in bounded memory;
    False when there is none (yet). A member whose name would leave a directory is skipped and
    named through ``say``."""
    if record.state == "cleaned":
        raise SessionError(cleaned_message(record) + " (its logs went with them)")
    async with cloud_for(record, cloud) as c:
        s3 = await c.client("s3")
        key = s3layout.stdouterr_key(record.session_id, jobnr)
        try:
            resp = await s3.get_object(Bucket=record.bucket, Key=key)
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) in ("NoSuchKey", "404"):
                return False
            async with cloud_errors(f"s3://{record.bucket}/{key}"):
                raise
        loop = asyncio.get_running_loop()
        async with resp["Body"] as body:

            def read() -> bytes:
                return asyncio.run_coroutine_threadsafe(body.read(1 << 20), loop).result()

            async with cloud_errors(f"reading s3://{record.bucket}/{key}"):
                try:
                    refused = await asyncio.to_thread(_copy_log, read, jobnr, write)
                except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
                    raise SessionError(
                        f"s3://{record.bucket}/{key}: not a readable .tar.bz2 log bundle ({exc})"
                    ) from None
        for why in refused:
            say(f"skipped {why} in s3://{record.bucket}/{key}")
        return True


async def job_ended(record: SessionRecord, jobnr: int, *, cloud: Cloud | None = None) -> bool:
    """Whether job ``jobnr`` has a terminal status."""
    async with cloud_for(record, cloud) as c:
        return (await _status(record, jobnr, c)) in TERMINAL


# when this process last set each job's watch flag: (bucket, session, job) -> monotonic time
_watching: dict[tuple[str, str, int], float] = {}


async def watch(record: SessionRecord, jobnr: int, cloud: Cloud) -> None:
    """Ask the job's agent for its live tail: the watch flag under control/ (the agent uploads
    ``live/job_N.log`` only while a viewer refreshes it), set at most every
    WATCH_REFRESH_SECONDS by this process."""
    key = (record.bucket, record.session_id, jobnr)
    now = time.monotonic()
    if now - _watching.get(key, -1e9) < WATCH_REFRESH_SECONDS:
        return
    s3 = await cloud.client("s3")
    async with cloud_errors(f"asking job {jobnr}'s agent for its live log"):
        await s3.put_object(
            Bucket=record.bucket,
            Key=s3layout.watch_key(record.session_id, jobnr),
            Body=watch_body().encode(),
        )
    _watching[key] = now


async def live_tail(record: SessionRecord, jobnr: int, *, cloud: Cloud | None = None) -> str:
    """The rolling tail of a running job's output (``live/job_N.log``), '' when there is none.
    Reading it sets the job's watch flag, so that the agent keeps it fresh while it is read."""
    async with cloud_for(record, cloud) as c:
        await watch(record, jobnr, c)
        s3 = await c.client("s3")
        key = s3layout.live_log_key(record.session_id, jobnr)
        try:
            resp = await s3.get_object(Bucket=record.bucket, Key=key)
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) in ("NoSuchKey", "404"):
                return ""
            async with cloud_errors(f"s3://{record.bucket}/{key}"):
                raise
        async with resp["Body"] as body:
            return (await body.read(LIVE_TAIL_LIMIT)).decode("utf-8", "replace")


LIVE_TAIL_LIMIT = 4 << 20  # a live tail is small; never read more of one
VIEW_LIMIT = 1 << 20  # the TUI's log view keeps the last MiB of a saved log


async def job_log(
    record: SessionRecord, jobnr: int, *, cloud: Cloud | None = None, limit: int = VIEW_LIMIT
) -> tuple[str, bool]:
    """(text, is_live): the live tail while the job runs, the last ``limit`` bytes of the saved
    log after (streamed: memory stays bounded whatever the log's size)."""
    async with cloud_for(record, cloud) as c:
        if await job_ended(record, jobnr, cloud=c):
            kept: collections.deque[bytes] = collections.deque()
            size = [0, 0]  # kept, total

            def keep(block: bytes) -> None:
                kept.append(block)
                size[0] += len(block)
                size[1] += len(block)
                while size[0] - len(kept[0]) >= limit:
                    size[0] -= len(kept.popleft())

            if await saved_log(record, jobnr, keep, cloud=c):
                data = b"".join(kept)[-limit:]
                text = data.decode("utf-8", "replace")
                if size[1] > limit:
                    text = (
                        f"[the first {size[1] - limit} bytes are not shown; "
                        f"`awsac logs {record.session_id} {jobnr}` prints all]\n" + text
                    )
                return text, False
        return await live_tail(record, jobnr, cloud=c), True
