"""File-system helpers shared by the agent and the client (the client imports them, never the
reverse): an atomic write that readers never see half done."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional


def atomic_write(
    path: Path, data: bytes, mode: int = 0o600, dir_mode: Optional[int] = None
) -> None:
    """Write ``data`` to ``path`` atomically: a private temporary file beside it (unique, so two
    writers never share one), fsynced, given ``mode``, renamed over ``path``. With ``dir_mode``,
    missing parent directories are created with that mode."""
    if dir_mode is not None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=dir_mode)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
