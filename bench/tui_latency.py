"""Benchmark 4: TUI latency on a refreshing session screen (pilot) and memory.

Two backends: the FixedBackend (1,000 jobs, snapshots made in advance: refreshes cost nothing
on the loop) and, with ``--live=N``, the LiveBackend on a private local cloud with an N-job
session (emulated agents: 1 % of the jobs change every second), refreshing through the real
Monitor while keys are pressed. Latency = key press to the first frame that shows its effect;
frames are rendered to terminal sequences as a real terminal driver would (the headless driver
skips that step, we do not). ``--save`` puts the figures into results.json's "tui".
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
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


KEY_GAP = 0.25  # seconds between two key presses on the live screen (a user holding a key: faster)


@dataclass(frozen=True)
class LiveResult:
    n_jobs: int
    n_instances: int
    cursor_ms: list[float]
    apply_ms: list[float]
    refreshes: int
    full_reads: int
    refresh_s: list[float]  # each refresh on the monitor's thread (calls, parse, merge)
    changed_per_s: int
    setup_s: float
    load: str


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


def make_backend(n_jobs: int = N_JOBS) -> TickingBackend:
    backend = TickingBackend()
    backend.ticks = [big_snapshot(n_jobs, 8, tick) for tick in range(4)]
    backend.big_id = backend.ticks[0].session_id
    backend.snapshots[backend.big_id] = backend.ticks[0]
    backend.meta[backend.big_id] = SessionSummaryMeta(_t(61), "c5.2xlarge", -(-n_jobs // 8), 0.34)
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


async def measure(cursor_moves: int = 30, log_opens: int = 8, n_jobs: int = N_JOBS) -> TuiResult:
    backend = make_backend(n_jobs)
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
            assert table.row_count == n_jobs
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


async def measure_live_screen(
    backend: Any, session_id: str, n_jobs: int, presses: int
) -> tuple[list[float], list[float], int]:
    """Cursor-down latency on the live session screen while it refreshes (every 1 s)."""
    app = TimedApp(backend, interval_scale=REFRESH_SCALE, start_screen=session_id)
    apply_times: list[float] = []
    original_apply = SessionScreen.apply

    def timed_apply(self: SessionScreen, data: object) -> None:
        t0 = time.perf_counter()
        original_apply(self, data)
        apply_times.append(time.perf_counter() - t0)

    SessionScreen.apply = timed_apply  # type: ignore[method-assign]
    cursor: list[float] = []
    try:
        async with app.run_test(size=SIZE) as pilot:
            deadline = time.monotonic() + 600  # the first (full) read of 10,000 jobs is slow here
            while not (isinstance(app.screen, SessionScreen) and app.screen.refreshes >= 2):
                assert time.monotonic() < deadline, "the session screen did not load"
                await pilot.pause(0.1)
            screen = app.screen
            table = screen.query_one("#jobs")
            assert table.row_count == n_jobs, table.row_count
            app.probe = lambda: (type(app.screen).__name__, table.cursor_row)
            for _ in range(presses):
                row = table.cursor_row
                t0 = time.perf_counter()
                await pilot.press("down")
                cursor.append(
                    await first_frame(app, t0, lambda s, r=row: s == ("SessionScreen", r + 1))
                )
                await asyncio.sleep(max(0.0, KEY_GAP - (time.perf_counter() - t0)))
            refreshes = screen.refreshes
    finally:
        SessionScreen.apply = original_apply  # type: ignore[method-assign]
    return [c * 1000 for c in cursor], [a * 1000 for a in apply_times], refreshes


def _agents(changes: Any, stop: Any) -> None:
    while not stop.wait(1.0):
        changes.write()


def measure_live(n_jobs: int, presses: int = 80) -> LiveResult:
    """An n-job session on a private local cloud (monitor_scale's emulated agents), its screen
    under the LiveBackend while 1 % of the jobs change every second."""
    import os

    import monitor_scale
    from common import private_local_cloud

    from awsac_tui import session
    from awsac_tui.cloud import Cloud
    from awsac_tui.local import service
    from awsac_tui.monitor import Monitor
    from awsac_tui.spec import CloudProfile
    from awsac_tui.ui import live

    with private_local_cloud(boot_delay=0.0) as (info, state):
        service.configure(info, boot_command=monitor_scale.EMULATED_BOOT)
        snapshot_id = service.make_snapshot(
            Path(__file__).resolve().parents[1] / "examples" / "eventgen" / "release", "bench"
        )
        t0 = time.monotonic()

        async def setup() -> tuple[Any, Any]:
            spec = monitor_scale.job_dir(state / "job", info.image_id, snapshot_id, n_jobs)
            async with Cloud(CloudProfile(local=True)) as cloud:
                record = await session.start(await session.plan_start(spec, cloud=cloud), cloud)
                mon = Monitor(record, cloud, boot_timeout=3600, write_lost=False)
                while True:
                    mon.force_full()
                    snap = await mon.refresh()
                    if len(snap.instances) == record.n_instances and all(
                        i.state == "running" for i in snap.instances
                    ):
                        break
                    await asyncio.sleep(1.0)
            store, recs = monitor_scale.emulate_agents(info, record.session_id, snapshot_id, n_jobs)
            return record, monitor_scale.Changes(store, recs)

        record, changes = asyncio.run(setup())
        setup_s = time.monotonic() - t0
        # 1 % of the jobs change every second, written from a process of their own (as agents
        # write from elsewhere: no share of this process's GIL)
        ctx = multiprocessing.get_context("fork")
        stop = ctx.Event()
        writer = ctx.Process(target=_agents, args=(changes, stop), daemon=True)
        writer.start()
        refresh_s: list[float] = []
        original = Monitor.refresh

        async def timed_refresh(self: Monitor) -> Any:
            t = time.perf_counter()
            try:
                return await original(self)
            finally:
                refresh_s.append(time.perf_counter() - t)

        Monitor.refresh = timed_refresh  # type: ignore[method-assign]
        backend = live.LiveBackend()
        try:

            async def run() -> tuple[list[float], list[float], int, int]:
                try:
                    cursor, applies, refreshes = await measure_live_screen(
                        backend, record.session_id, n_jobs, presses
                    )
                    mon = backend._pool._monitors.get(record.session_id)
                    return cursor, applies, refreshes, mon.full_reads if mon else 0
                finally:
                    await backend.aclose()

            cursor, applies, refreshes, full_reads = asyncio.run(run())
        finally:
            Monitor.refresh = original  # type: ignore[method-assign]
            stop.set()
            writer.join(timeout=30)
            if writer.is_alive():
                writer.kill()
        return LiveResult(
            n_jobs,
            record.n_instances,
            cursor,
            applies,
            refreshes,
            full_reads,
            refresh_s,
            changes.count,
            setup_s,
            " ".join(f"{x:.2f}" for x in os.getloadavg()),
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
    live_n = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--live=")), None)
    res = asyncio.run(measure())
    peak = asyncio.run(memory_peak()) if "--no-tracemalloc" not in sys.argv else None
    res = TuiResult(**{**asdict(res), "tracemalloc_peak_mib": peak})
    out: dict[str, Any] = asdict(res)
    if live_n:  # the fixed backend at the live size too, then the live one
        fixed = asyncio.run(measure(n_jobs=live_n))
        out["fixed_big"] = {"n_jobs": live_n, **asdict(fixed)}
        out["live"] = asdict(measure_live(live_n))
    text = json.dumps(out)
    target = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--out=")), None)
    if target:
        Path(target).write_text(text)
    if "--save" in sys.argv:
        from common import update_results

        update_results(tui=out)
    print(text)


if __name__ == "__main__":
    main()
