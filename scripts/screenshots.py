"""Write SVG screenshots of every awsac screen to ``screenshots/`` (App.save_screenshot).

Usage: ``PYTHONPATH=.:agent python scripts/screenshots.py [--out DIR] [--size 100x30]``.
Today the data come from FixedBackend (fixed clock and ids, so the files only change when a
screen changes); a real demo session can be shot by passing another backend to ``shoot``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "agent"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from awsac_tui.ui.app import AwsacApp  # noqa: E402
from awsac_tui.ui.backend import Backend, FixedBackend  # noqa: E402
from awsac_tui.ui.screens.compose import ComposeScreen  # noqa: E402
from awsac_tui.ui.screens.log import LogScreen  # noqa: E402
from awsac_tui.ui.screens.session import SessionScreen  # noqa: E402


async def _until(pilot, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the screen did not get its data in time")
        await pilot.pause(0.02)


async def shoot(
    backend: Backend,
    out: Path,
    size: tuple[int, int],
    session_ids: list[tuple[str, str]],
    job_dir: Path,
    theme: str = "textual-dark",
) -> list[Path]:
    """Save one SVG per screen into ``out``; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    app = AwsacApp(backend)
    async with app.run_test(size=size) as pilot:
        app.theme = theme

        def save(name: str) -> None:
            app.clear_notifications()
            written.append(Path(app.save_screenshot(f"{name}.svg", path=str(out))))

        await _until(pilot, lambda: app.screen.id == "sessions" and app.screen.refreshes > 0)
        await pilot.pause()
        save("sessions")
        for k, (name, sid) in enumerate(session_ids):
            app.open_session(sid)
            await _until(pilot, lambda: isinstance(app.screen, SessionScreen))
            screen = app.screen
            await _until(pilot, lambda s=screen: s.refreshes > 0)
            await pilot.pause()
            save(name)
            if k == 0 and screen.snapshot and screen.snapshot.jobs:
                running = [j for j in screen.snapshot.jobs if j.status == "running"]
                job = (running or list(screen.snapshot.jobs))[0]
                log = LogScreen.for_job(sid, job)
                await app.push_screen(log)
                await _until(pilot, lambda s=log: s.refreshes > 0)
                await pilot.pause()
                save("log")
                app.pop_screen()
            app.pop_screen()
            await pilot.pause()
        compose = ComposeScreen(job_dir)
        await app.push_screen(compose)
        await _until(pilot, lambda: compose.choices.instance_types != ())
        compose.query_one("#lines").focus()
        await pilot.pause()
        save("compose")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--size", default="100x30", help="terminal size WIDTHxHEIGHT")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    backend = FixedBackend.demo()
    ids = [
        ("session", "081215_1646--eventgen--1816"),
        ("session_mixed", "081215_1650--mixed--a3f0"),
        ("session_1000_jobs", "081215_1600--big--0b1d"),
    ]
    import os

    os.chdir(ROOT)  # the compose screen shows the job dir relative to the repo
    files = asyncio.run(shoot(backend, args.out, (width, height), ids, Path("examples/eventgen")))
    for f in files:
        print(f.relative_to(ROOT) if f.is_relative_to(ROOT) else f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
