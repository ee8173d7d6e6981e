"""The agent's console log: timestamped, redacted lines to stdout (the EC2 console) and a file.

Steps are logged with what they did and how long they took, in the paper's console style.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Iterator, Optional

from .redact import redact


class StepFailed(Exception):
    """Wraps an exception with the name of the step it happened in."""

    def __init__(self, step: str, cause: BaseException) -> None:
        self.step = step
        self.cause = cause
        super().__init__(f"step '{step}' failed: {type(cause).__name__}: {cause}")


class AgentLog:
    """Writes ``YY-MM-DD HH:MM:SS message`` lines (UTC, redacted) to stdout and an optional file."""

    def __init__(self, path: Optional[Path] = None, stream: Optional[IO[str]] = None) -> None:
        self.path = path
        self.stream = stream if stream is not None else sys.stdout
        self._file: Optional[IO[str]] = None
        self._lock = threading.Lock()  # the worker logs from several threads
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8")

    def __call__(self, message: str) -> None:
        self.log(message)

    def log(self, message: str) -> None:
        stamp = datetime.now(timezone.utc).strftime("%y-%m-%d %H:%M:%S")
        out = "".join(f"{stamp} {line}\n" for line in redact(str(message)).splitlines() or [""])
        with self._lock:
            try:
                self.stream.write(out)
                self.stream.flush()
            except (OSError, ValueError):
                pass
            if self._file is not None:
                try:
                    self._file.write(out)
                    self._file.flush()
                except ValueError:  # closed (a thread logging after the end)
                    pass

    def exception(self, message: str, exc: BaseException) -> None:
        """Log ``message`` and the traceback of ``exc`` (redacted like everything else)."""
        self.log(f"{message}: {type(exc).__name__}: {exc}")
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.log(tb.rstrip())

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Log ``# name...`` and, at the end, how long the step took or why it failed."""
        self.log(f"# {name}...")
        t0 = time.monotonic()
        try:
            yield
        except BaseException as exc:
            self.log(
                f"  {name}: FAILED after {time.monotonic() - t0:.1f} s: {type(exc).__name__}: {exc}"
            )
            raise
        self.log(f"  {name}: done in {time.monotonic() - t0:.1f} s")

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
