"""Refresh and key latency of the live session screen on a synthetic 1,000-job session.

For the benchmark in ``bench/``: ``asyncio.run(measure())`` returns milliseconds per refresh
(diff applied to the tables and the timeline) and per key press (cursor move repainted).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from awsac_tui.testing.fixed_backend import FixedBackend, big_snapshot
from awsac_tui.ui.app import AwsacApp
from awsac_tui.ui.screens.session import JOB_COLUMNS, SessionScreen

BIG_ID = "081215_1600--big--0b1d"


@dataclass(frozen=True)
class Latency:
    n_jobs: int
    refresh_ms: tuple[float, ...]  # one per tick: fetch + diff + repaint
    key_ms: tuple[float, ...]  # one per key press (down), until the cursor moved and painted
    # what the jobs table showed at the end, so a caller can tell the probe measured real work
    shown_statuses: tuple[str, ...] = ()  # each row's status (its cell's first word), job order
    cursor_row: int = 0  # the jobs table's cursor after the key presses

    def summary(self) -> dict[str, float]:
        return {
            "n_jobs": self.n_jobs,
            "refresh_median_ms": statistics.median(self.refresh_ms),
            "refresh_max_ms": max(self.refresh_ms),
            "key_median_ms": statistics.median(self.key_ms),
            "key_max_ms": max(self.key_ms),
        }


async def _until(pilot, condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the session screen did not refresh in time")
        await pilot.pause(0)


async def measure(
    n_jobs: int = 1000, ticks: int = 10, keys: int = 20, size: tuple[int, int] = (120, 40)
) -> Latency:
    """Open the synthetic session, then time ``ticks`` refreshes and ``keys`` cursor moves."""
    backend = FixedBackend.demo(with_big=False)
    backend.snapshots[BIG_ID] = big_snapshot(n_jobs)
    app = AwsacApp(backend, interval_scale=1000.0)  # refreshes only when forced
    refresh_ms: list[float] = []
    key_ms: list[float] = []
    async with app.run_test(size=size) as pilot:
        await _until(pilot, lambda: app.screen.id == "sessions" and app.screen.refreshes > 0)
        app.open_session(BIG_ID)
        await _until(pilot, lambda: isinstance(app.screen, SessionScreen))
        screen = app.screen
        await _until(pilot, lambda: screen.refreshes > 0)
        jobs = screen.query_one("#jobs")
        jobs.focus()
        for tick in range(1, ticks + 1):
            backend.snapshots[BIG_ID] = big_snapshot(n_jobs, tick=tick)
            before = screen.refreshes
            t0 = time.perf_counter()
            screen.action_force_refresh()
            await _until(pilot, lambda b=before: screen.refreshes > b)
            await pilot.pause()
            refresh_ms.append((time.perf_counter() - t0) * 1000)
        for _ in range(keys):
            row = jobs.cursor_row
            t0 = time.perf_counter()
            await pilot.press("down")
            await _until(pilot, lambda r=row: jobs.cursor_row == r + 1)
            key_ms.append((time.perf_counter() - t0) * 1000)
        column = [key for key, _, _ in JOB_COLUMNS].index("status")
        rows = [jobs.row_cells(str(n)) for n in range(1, n_jobs + 1)]  # keyed by job number
        shown = tuple(str(cells[column]).split(" ", 1)[0] if cells else "" for cells in rows)
        cursor = jobs.cursor_row
    return Latency(n_jobs, tuple(refresh_ms), tuple(key_ms), shown, cursor)


if __name__ == "__main__":
    import asyncio
    import json

    print(json.dumps(asyncio.run(measure()).summary(), indent=2))
