"""Benchmark 4: TUI latency on a refreshing 1,000-job session screen (pilot, FixedBackend) and memory.

Latency = key press to the first frame that shows its effect; frames are rendered to terminal
sequences as a real terminal driver would (the headless driver skips that step, we do not).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
import tracemalloc
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import common  # noqa: F401 - puts the repository on sys.path
from textual._compositor import CompositorUpdate

from awsac_tui.testing.fixed_backend import FixedBackend, SessionSummaryMeta, _t, big_snapshot
from awsac_tui.ui.app import AwsacApp
from awsac_tui.ui.screens.session import SessionScreen

SIZE = (120, 40)
N_JOBS = 1000
REFRESH_SCALE = 0.2  # the screen's 5 s interval for a running session becomes 1 s


@dataclass(frozen=True)
class TuiResult:
    cursor_ms: list[float]
    log_open_ms: list[float]
    apply_ms: list[float]
    refreshes: int
    peak_rss_mib: float
    tracemalloc_peak_mib: float | None


class TickingBackend(FixedBackend):
    """FixedBackend whose 1,000-job session changes at every refresh (job states advance)."""

    ticks: list[Any]
    n: int = 0

    async def refresh(self, session_id: str) -> Any:
        if session_id == self.big_id:
            self.n += 1
            return self.ticks[self.n % len(self.ticks)]
        return await super().refresh(session_id)


def make_backend() -> TickingBackend:
    backend = TickingBackend()
    backend.ticks = [big_snapshot(N_JOBS, 8, tick) for tick in range(4)]
    backend.big_id = backend.ticks[0].session_id
    backend.snapshots[backend.big_id] = backend.ticks[0]
    backend.meta[backend.big_id] = SessionSummaryMeta(_t(61), "c5.2xlarge", 125, 0.34)
    return backend


class TimedApp(AwsacApp):
    """Records the time and a probe of the state at every frame, rendering it like a terminal."""

    CSS_PATH = str(Path(sys.modules[AwsacApp.__module__].__file__).with_name("app.tcss"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frames: list[tuple[float, Any]] = []
        self.probe: Any = lambda: None

    def _display(self, screen: Any, renderable: Any) -> None:
        if renderable is not None and not self._batch_count:
            if isinstance(renderable, CompositorUpdate):
                renderable.render_segments(self.console)
            self.frames.append((time.perf_counter(), self.probe()))
        super()._display(screen, renderable)


async def first_frame(app: TimedApp, since: float, ok: Any, timeout: float = 10.0) -> float:
    """Seconds from ``since`` to the first frame after it whose probe satisfies ``ok``."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        for t, state in app.frames:
            if t >= since and ok(state):
                return t - since
        await asyncio.sleep(0.001)
    raise AssertionError("the screen did not show the change in time")


async def measure(cursor_moves: int = 30, log_opens: int = 8) -> TuiResult:
    backend = make_backend()
    app = TimedApp(backend, interval_scale=REFRESH_SCALE, start_screen=backend.big_id)
    apply_times: list[float] = []
    original_apply = SessionScreen.apply

    def timed_apply(self: SessionScreen, data: object) -> None:
        t0 = time.perf_counter()
        original_apply(self, data)
        apply_times.append(time.perf_counter() - t0)

    SessionScreen.apply = timed_apply  # type: ignore[method-assign]
    cursor: list[float] = []
    logs: list[float] = []
    try:
        async with app.run_test(size=SIZE) as pilot:
            deadline = time.monotonic() + 30
            while not (isinstance(app.screen, SessionScreen) and app.screen.refreshes >= 2):
                assert time.monotonic() < deadline, "the session screen did not load"
                await pilot.pause(0.05)
            screen = app.screen
            table = screen.query_one("#jobs")
            assert table.row_count == N_JOBS
            app.probe = lambda: (type(app.screen).__name__, table.cursor_row)
            for _ in range(cursor_moves):
                row = table.cursor_row
                t0 = time.perf_counter()
                await pilot.press("down")
                cursor.append(
                    await first_frame(app, t0, lambda s, r=row: s == ("SessionScreen", r + 1))
                )
                await pilot.pause(0.02)
            for _ in range(log_opens):
                from textual.widgets import Log

                def log_state() -> Any:
                    if type(app.screen).__name__ != "LogScreen":
                        return None
                    return app.screen.query_one(Log).line_count

                app.probe = log_state
                t0 = time.perf_counter()
                await pilot.press("l")
                logs.append(await first_frame(app, t0, lambda s: bool(s)))
                await pilot.press("escape")
                while app.screen is not screen:
                    await pilot.pause(0.01)
                app.probe = lambda: (type(app.screen).__name__, table.cursor_row)
                await pilot.press("down")
            refreshes = screen.refreshes
    finally:
        SessionScreen.apply = original_apply  # type: ignore[method-assign]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return TuiResult(
        [c * 1000 for c in cursor],
        [c * 1000 for c in logs],
        [a * 1000 for a in apply_times],
        refreshes,
        rss,
        None,
    )


async def memory_peak() -> float:
    """tracemalloc's peak of Python allocations while the 1,000-job screen loads and refreshes."""
    tracemalloc.start()
    backend = make_backend()
    app = AwsacApp(backend, interval_scale=REFRESH_SCALE, start_screen=backend.big_id)
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.monotonic() + 60
        while not (isinstance(app.screen, SessionScreen) and app.screen.refreshes >= 3):
            assert time.monotonic() < deadline
            await pilot.pause(0.05)
        await pilot.press("l")
        await pilot.pause(0.2)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    """Print the result as JSON (run_all.py runs this in its own process, for ru_maxrss)."""
    res = asyncio.run(measure())
    peak = asyncio.run(memory_peak()) if "--no-tracemalloc" not in sys.argv else None
    res = TuiResult(**{**asdict(res), "tracemalloc_peak_mib": peak})
    out = json.dumps(asdict(res))
    target = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--out=")), None)
    if target:
        Path(target).write_text(out)
    print(out)


if __name__ == "__main__":
    main()
