"""Headless output: plain lines for logs when stdout is not a terminal, rich progress bars when it is."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO


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
        """A ``(done, total)`` callback: a rich bar on a terminal, one line at the end otherwise."""
        if self.quiet:
            yield lambda d, t: None
            return
        if not self.tty:
            last = [0, 0]

            def plain(done: int, total: int) -> None:
                last[0], last[1] = done, total

            yield plain
            self.say(f"{label}: {_size(last[0])} of {_size(last[1])}")
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            transient=False,
        ) as prog:
            task = prog.add_task(label, total=None)

            def rich_cb(done: int, total: int) -> None:
                prog.update(task, completed=done, total=total or None)

            yield rich_cb


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def human_size(n: int | None) -> str:
    """Bytes as a short human-readable size ('-' for None)."""
    return "-" if n is None else _size(n)
