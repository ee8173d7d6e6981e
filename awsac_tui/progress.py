"""Headless output: plain lines for logs when stdout is not a terminal, rich progress bars when it is."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO


class Output:
    """Where the headless commands write: ``say`` for lines, ``bar`` for a progress callback."""

    def __init__(
        self, stream: TextIO | None = None, tty: bool | None = None, quiet: bool = False
    ) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.quiet = quiet

    def say(self, text: str) -> None:
        if self.quiet:
            return
        print(text, file=self.stream, flush=True)

    def error(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    @contextmanager
    def bar(self, label: str) -> Iterator[Callable[[int, int], None]]:
        """A ``(done, total)`` callback that shows progress while the work happens: a rich bar on
        a terminal (started at the first call, so questions asked before the work are not
        mixed with it), plain lines otherwise (at the start and at every quarter)."""
        if self.quiet:
            yield lambda d, t: None
            return
        if not self.tty:
            state = {"next": 0.0, "t0": 0.0, "last": (0, 0)}

            def plain(done: int, total: int) -> None:
                if state["t0"] == 0.0:
                    state["t0"] = time.monotonic()
                state["last"] = (done, total)
                frac = done / total if total else 1.0
                if frac >= state["next"] and frac < 1.0:
                    self.say(f"{label}: {_size(done)} of {_size(total)} ({100 * frac:.0f} %)")
                    state["next"] = (int(frac * 4) + 1) / 4
                elif frac >= 1.0 and state["next"] <= 1.0:
                    took = time.monotonic() - state["t0"]
                    self.say(f"{label}: {_size(done)} of {_size(total)} (100 %, {took:.1f} s)")
                    state["next"] = 2.0

            yield plain
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        prog = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        task: list[Any] = []

        def rich_cb(done: int, total: int) -> None:
            if not task:
                prog.start()
                task.append(prog.add_task(label, total=None))
            prog.update(task[0], completed=done, total=total or None)

        try:
            yield rich_cb
        finally:
            if task:
                prog.stop()


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def human_size(n: int | None) -> str:
    """Bytes as a short human-readable size ('-' for None)."""
    return "-" if n is None else _size(n)
