"""Download a session's results: every object under its prefix into ``OUTDIR/session-<id>/``,
never outside it, skipping files S3's checksum says are identical, never leaving a half-written
one, and noting in the record what was fetched (cleanup reads it)."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from awsac_agent import s3layout
from awsac_agent.archive import safe_relpath
from awsac_agent.s3checksum import crc32_text, file_checksum, stored_checksum

from .. import records
from ..cloud import Cloud, cloud_errors
from ..progress import human_size
from ..records import FetchedObject, SessionRecord
from ..resources import list_objects
from .common import Confirm, Progress, Say, SessionError, ask, cloud_for, quiet

BOOKKEEPING_PREFIXES = s3layout.BOOKKEEPING_PREFIXES
NAMED_AT_MOST = 10  # a question or message names this many files, then "and N more"


@dataclass(frozen=True)
class Download:
    """What ``results`` did with one object: saved | overwritten | skipped (identical) |
    kept (differs, not overwritten) | refused (its key would leave the directory; ``why``)."""

    key: str
    path: Path | None
    action: str
    size: int
    why: str = ""


def names(items: list[str], limit: int = NAMED_AT_MOST) -> str:
    """``a, b, c`` (and ``and N more`` past ``limit``)."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def cleaned_message(record: SessionRecord) -> str:
    """What ``results`` says about a session whose objects cleanup removed."""
    got = [f.key for f in record.fetched]
    where = {str(Path(f.path).parent) for f in record.fetched if f.path}
    fetched = (
        f"; {len(got)} object(s) had been downloaded before, to {', '.join(sorted(where))}"
        if got
        else "; none of them had been downloaded"
    )
    return (
        f"session {record.session_id} was cleaned up"
        + (f" at {record.cleaned_at}" if record.cleaned_at else "")
        + f": its objects were removed from s3://{record.bucket}/{record.session_id}/"
        + fetched
    )


def _in_the_way(target: Path, rel: str) -> str | None:
    """Why writing ``target/rel`` would follow a link or meet a file where a directory goes."""
    here = target
    parts = rel.split("/")
    for part in parts[:-1]:
        here = here / part
        if here.is_symlink():
            return f"{here} is a symlink (not followed)"
        if here.exists() and not here.is_dir():
            return f"{here} is a file, not a directory"
    path = target / rel
    if path.is_symlink():
        return f"{path} is a symlink (not followed)"
    if path.is_dir():
        return f"{path} is a directory"
    return None


async def _is_identical(
    s3: object, bucket: str, key: str, path: Path, size: int, etag: str, record: SessionRecord
) -> bool:
    """Whether ``path`` holds the object, by a checksum S3 stores (whole-object CRC32/SHA, or the
    MD5 ETag of a single-part object); else by the CRC32 noted when this key, with this ETag, was
    downloaded. Part sizes are never guessed."""
    if not path.is_file() or path.stat().st_size != size:
        return False
    async with cloud_errors(f"HeadObject s3://{bucket}/{key}"):
        head = await s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")  # type: ignore[attr-defined]
    stored = stored_checksum(head)
    if stored is not None:
        algorithm, value = stored
        return await asyncio.to_thread(file_checksum, path, algorithm) == value
    rel = key.split("/", 1)[1] if "/" in key else key
    noted = {f.key: f for f in record.fetched}.get(rel)
    if noted is not None and noted.etag == etag and noted.crc32:
        return await asyncio.to_thread(file_checksum, path) == noted.crc32
    return False


async def results(
    record: SessionRecord,
    outdir: str | Path,
    *,
    overwrite: bool = False,
    ask_overwrite: Confirm | None = None,
    progress: Progress | None = None,
    say: Say = quiet,
    cloud: Cloud | None = None,
    concurrency: int = 8,
    include_bookkeeping: bool = False,
) -> list[Download]:
    """Download every object under the session prefix into ``OUTDIR/session-<id>/`` (created
    with its parents). A key that would leave that directory is refused (``action="refused"``)."""
    if record.state == "cleaned":
        raise SessionError(
            cleaned_message(record) + " (nothing to download; `awsac check` shows its last states)"
        )
    outdir = Path(outdir).expanduser()
    target = outdir / f"session-{record.session_id}"
    if not target.is_dir():
        await asyncio.to_thread(outdir.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(target.mkdir, mode=0o700, exist_ok=True)
        say(f"outputfolder created: {target}")
    out: list[Download] = []
    fetched: list[FetchedObject] = []
    async with cloud_for(record, cloud) as c:
        prefix = s3layout.prefix(record.session_id)
        listing = await list_objects(c, record.bucket, prefix)
        if not include_bookkeeping:
            listing = [
                o for o in listing if not o[0][len(prefix) :].startswith(BOOKKEEPING_PREFIXES)
            ]
        s3 = await c.client("s3")
        todo: list[tuple[str, str, int, Path, str]] = []  # key, etag, size, path, action
        differ: list[tuple[str, str, int, Path]] = []
        for key, etag, size in listing:
            rel, why = safe_relpath(key[len(prefix) :])
            if rel is None:
                out.append(Download(key, None, "refused", size, f"its name {why}"))
                continue
            problem = await asyncio.to_thread(_in_the_way, target, rel)
            path = target / rel
            if problem:
                out.append(Download(key, None, "refused", size, problem))
            elif not path.exists():
                todo.append((key, etag, size, path, "saved"))
            elif await _is_identical(s3, record.bucket, key, path, size, etag, record):
                out.append(Download(key, path, "skipped", size))
            else:
                differ.append((key, etag, size, path))
        if differ and not overwrite and ask_overwrite is not None:
            shown = [str(d[3].relative_to(target)) for d in differ]
            question = (
                f"overwrite {differ[0][3]}? (it differs from s3://{record.bucket}/{differ[0][0]})"
                if len(differ) == 1
                else f"{len(differ)} files in {target} differ from the bucket: {names(shown)}. "
                "overwrite them all?"
            )
            overwrite = await ask(ask_overwrite, question)
        for key, etag, size, path in differ:
            if overwrite:
                todo.append((key, etag, size, path, "overwritten"))
            else:
                out.append(Download(key, path, "kept", size))
        total = sum(t[2] for t in todo)
        free = (await asyncio.to_thread(shutil.disk_usage, target)).free
        if total > free:
            raise SessionError(
                f"{target}: the {len(todo)} file(s) to download need {human_size(total)}, but "
                f"only {human_size(free)} are free on that disk (free some space, or give "
                "another directory with -o)"
            )
        done = 0
        report = progress or (lambda d, t: None)
        if todo:
            report(0, total)
        sem = asyncio.Semaphore(concurrency)

        async def one(key: str, etag: str, size: int, path: Path, action: str) -> None:
            nonlocal done
            async with sem:
                async with cloud_errors(f"downloading s3://{record.bucket}/{key}"):
                    resp = await s3.get_object(Bucket=record.bucket, Key=key)
                    tmp, fh = await asyncio.to_thread(_open_part, target, path)
                    crc = 0
                    try:
                        async with resp["Body"] as body:
                            while chunk := await body.read(1024 * 1024):
                                await asyncio.to_thread(_write, fh, chunk, path, total - done)
                                crc = zlib.crc32(chunk, crc)
                                done += len(chunk)
                                report(done, total)
                        await asyncio.to_thread(_commit_part, fh, tmp, path)
                    except BaseException:
                        await asyncio.to_thread(_discard_part, fh, tmp)
                        raise
            rel = key[len(prefix) :]
            out.append(Download(key, path, action, size))
            fetched.append(FetchedObject(rel, etag, size, crc32_text(crc), str(path)))

        try:
            await asyncio.gather(*(one(*t) for t in todo))
        finally:
            skipped = {d.key: d for d in out if d.action == "skipped"}
            for key, etag, size in listing:
                if key in skipped:
                    rel = key[len(prefix) :]
                    fetched.append(FetchedObject(rel, etag, size, "", str(skipped[key].path)))
            if fetched:
                await asyncio.to_thread(_note_fetched, record, fetched)
    out.sort(key=lambda d: d.key)
    extra = {"skipped": " (identical)", "kept": " (differs; use --overwrite to replace it)"}
    for d in out:
        rel = d.key[len(prefix) :]
        if d.action == "refused":
            say(f"refused {d.key!r}: {d.why}; not written (it would leave {target})")
        else:
            say(f"{d.action} {rel}{extra.get(d.action, '')}")
    return out


def _note_fetched(record: SessionRecord, fetched: list[FetchedObject]) -> None:
    """Add ``fetched`` to the stored record (re-read first: another command may have written it)."""
    path = records.record_path(record.session_id)
    current = records.read_record_file(path) if path.is_file() else record
    old = {f.key: f for f in current.fetched}
    merged = [
        dataclasses.replace(f, crc32=old[f.key].crc32)
        if not f.crc32 and f.key in old and old[f.key].etag == f.etag
        else f
        for f in fetched
    ]
    records.save_record(current.with_fetched(merged))


def _write(fh: BinaryIO, chunk: bytes, path: Path, remaining: int) -> None:
    try:
        fh.write(chunk)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise SessionError(
                f"{path}: the disk is full (no space left on device) with {human_size(remaining)} "
                f"still to download; free that much on the disk of {path.parent}, or give "
                "another directory with -o (nothing half-written is kept)"
            ) from None
        raise


def _open_part(target: Path, path: Path) -> tuple[Path, BinaryIO]:
    """Create ``path``'s directories below ``target`` (never through a symlink) and open its
    private ``.part`` file for writing."""
    here = target
    for part in path.relative_to(target).parts[:-1]:
        here = here / part
        if here.is_symlink():
            raise SessionError(f"{here}: is a symlink; results never write through one")
        here.mkdir(mode=0o700, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o600)
    return tmp, os.fdopen(fd, "wb")


def _commit_part(fh: BinaryIO, tmp: Path, path: Path) -> None:
    """Close a completed ``.part`` file and move it into place (mode 0600)."""
    try:
        fh.close()
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise SessionError(
                f"{path}: the disk is full (no space left on device); free space on the disk of "
                f"{path.parent}, or give another directory with -o"
            ) from None
        raise
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def _discard_part(fh: BinaryIO, tmp: Path) -> None:
    """Close and remove the ``.part`` file of a failed download (nothing half-written stays)."""
    try:
        fh.close()
    except OSError:
        pass
    tmp.unlink(missing_ok=True)
