"""Download a session's results: every object under its prefix into ``OUTDIR/session-<id>/``,
skipping identical files, never leaving a half-written one."""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from awsac_agent import s3layout
from awsac_agent.errors import FormatError

from ..cloud import Cloud, cloud_errors
from ..records import SessionRecord
from ..resources import list_objects
from .common import PART_SIZE, Confirm, Progress, Say, ask, cloud_for, quiet

BOOKKEEPING_PREFIXES = s3layout.BOOKKEEPING_PREFIXES


@dataclass(frozen=True)
class Download:
    key: str
    path: Path
    action: str  # saved | skipped | overwritten | kept
    size: int


def _md5_etag(path: Path, etag: str) -> str:
    if "-" not in etag:
        return hashlib.md5(path.read_bytes()).hexdigest()
    n = int(etag.split("-")[1])
    size = path.stat().st_size
    part = max(PART_SIZE, -(-size // n)) if n else PART_SIZE
    digests = []
    with path.open("rb") as fh:
        while chunk := fh.read(part):
            digests.append(hashlib.md5(chunk).digest())
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def _identical(path: Path, size: int, etag: str) -> bool:
    if not path.is_file() or path.stat().st_size != size:
        return False
    return _md5_etag(path, etag) == etag


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
    """Download every object under the session prefix into ``OUTDIR/session-<id>/``."""
    outdir = Path(outdir)
    if not outdir.is_dir():
        raise FormatError(f"{outdir}: output directory does not exist (create it first)")
    target = outdir / f"session-{record.session_id}"
    if not target.exists():
        target.mkdir(mode=0o700)
        say(f"outputfolder created: {target}")
    async with cloud_for(record, cloud) as c:
        prefix = s3layout.prefix(record.session_id)
        listing = await list_objects(c, record.bucket, prefix)
        if not include_bookkeeping:
            listing = [
                o for o in listing if not o[0][len(prefix) :].startswith(BOOKKEEPING_PREFIXES)
            ]
        total = sum(s for _, _, s in listing)
        done = 0
        report = progress or (lambda d, t: None)
        report(0, total)
        s3 = await c.client("s3")
        sem = asyncio.Semaphore(concurrency)
        out: list[Download] = []

        async def one(key: str, etag: str, size: int) -> None:
            nonlocal done
            rel = key[len(prefix) :]
            path = target / rel
            if ".." in Path(rel).parts:
                return
            action = "saved"
            if path.exists():
                if await asyncio.to_thread(_identical, path, size, etag):
                    out.append(Download(key, path, "skipped", size))
                    done += size
                    report(done, total)
                    return
                if not overwrite and not await ask(
                    ask_overwrite or (lambda q: False), f"overwrite {path}?"
                ):
                    out.append(Download(key, path, "kept", size))
                    return
                action = "overwritten"
            async with sem:
                async with cloud_errors(f"downloading s3://{record.bucket}/{key}"):
                    resp = await s3.get_object(Bucket=record.bucket, Key=key)
                    tmp, fh = await asyncio.to_thread(_open_part, path)
                    try:
                        async with resp["Body"] as body:
                            while chunk := await body.read(1024 * 1024):
                                await asyncio.to_thread(fh.write, chunk)
                                done += len(chunk)
                                report(done, total)
                        await asyncio.to_thread(_commit_part, fh, tmp, path)
                    except BaseException:
                        await asyncio.to_thread(_discard_part, fh, tmp)
                        raise
            out.append(Download(key, path, action, size))

        await asyncio.gather(*(one(k, e, s) for k, e, s in listing))
    out.sort(key=lambda d: d.key)
    for d in out:
        rel = d.key[len(prefix) :]
        extra = {"skipped": " (identical)", "kept": " (differs; use --overwrite to replace it)"}
        say(f"{d.action} {rel}{extra.get(d.action, '')}")
    return out


def _open_part(path: Path) -> tuple[Path, BinaryIO]:
    """Create ``path``'s directory and open its private ``.part`` file for writing."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return tmp, os.fdopen(fd, "wb")


def _commit_part(fh: BinaryIO, tmp: Path, path: Path) -> None:
    """Close a completed ``.part`` file and move it into place (mode 0600)."""
    fh.close()
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def _discard_part(fh: BinaryIO, tmp: Path) -> None:
    """Close and remove the ``.part`` file of a failed download (nothing half-written stays)."""
    fh.close()
    tmp.unlink(missing_ok=True)
