"""File-system helpers shared by the agent and the client (the client imports them, never the
reverse): the one atomic write, so that a reader never sees a file half done."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional


@contextmanager
def atomic_path(path: Path, mode: int = 0o600, dir_mode: Optional[int] = None) -> Iterator[Path]:
    """A private temporary file beside ``path`` (unique, so two writers never share one) for the
    caller to fill by name (tarfile, zipapp, ...). When the block ends normally it is fsynced,
    given ``mode`` and renamed over ``path``; when it raises it is removed. With ``dir_mode``,
    missing parent directories are created with that mode."""
    path = Path(path)
    if dir_mode is not None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=dir_mode)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(
    path: Path, data: bytes, mode: int = 0o600, dir_mode: Optional[int] = None
) -> None:
    """Write ``data`` to ``path`` atomically (``atomic_path``)."""
    with atomic_path(path, mode, dir_mode) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: Path, data: Any, mode: int = 0o644) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    atomic_write(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"), mode)
