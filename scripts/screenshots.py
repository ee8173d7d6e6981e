"""Write SVG screenshots of every awsac screen to ``screenshots/`` (App.save_screenshot).

Usage: ``PYTHONPATH=.:agent python scripts/screenshots.py [--live] [--out DIR] [--size 100x30]``.
By default the data come from FixedBackend (fixed clock and ids, so the files only change when a
screen changes). ``--live`` runs the paper's eventgen example on the local cloud (its own state
directory) and shoots the real session while it runs and once it has finished.
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

from awsac_tui.testing.fixed_backend import FixedBackend  # noqa: E402
from awsac_tui.ui.app import AwsacApp  # noqa: E402
from awsac_tui.ui.backend import Backend  # noqa: E402
from awsac_tui.ui.screens.compose import ComposeScreen  # noqa: E402
from awsac_tui.ui.screens.detail import JobDetailScreen  # noqa: E402
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


async def shoot_live(out: Path, size: tuple[int, int]) -> list[Path]:
    """Run the eventgen demo session on a private local cloud and shoot every screen."""
    import os
    import tempfile

    state = Path(tempfile.mkdtemp(prefix="awsac-screenshots-"))
    os.environ["AWSAC_STATE_DIR"] = str(state)
    from awsac_tui import demo
    from awsac_tui import spec as specmod
    from awsac_tui.local import service
    from awsac_tui.spec import CloudProfile
    from awsac_tui.ui.live import LiveBackend

    info = await asyncio.to_thread(service.ensure_up)
    written: list[Path] = []
    try:
        example = demo.find_example()
        snap_id = await asyncio.to_thread(
            service.make_snapshot, example / "release", "ATLAS 14.2.10 release (eventgen)"
        )
        spec_path = await asyncio.to_thread(
            demo.prepare_job_dir,
            example,
            state / "eventgen",
            snap_id,
            info.image_id,
            info.account_id,
        )
        spec, jobs = specmod.load_session(spec_path)
        backend = LiveBackend(CloudProfile(local=True))

        async def yes(plan) -> bool:
            return True

        sid = await backend.start(spec, jobs, spec_path.parent, lambda m, f: None, yes)
        assert sid is not None
        out.mkdir(parents=True, exist_ok=True)
        app = AwsacApp(backend, interval_scale=0.1)
        async with app.run_test(size=size) as pilot:

            def save(name: str) -> None:
                app.clear_notifications()
                written.append(Path(app.save_screenshot(f"{name}.svg", path=str(out))))

            await _until(pilot, lambda: app.screen.id == "sessions" and app.screen.refreshes > 0)
            app.open_session(sid)
            await _until(pilot, lambda: isinstance(app.screen, SessionScreen))
            screen = app.screen

            def statuses() -> list[str]:
                return [j.status for j in screen.snapshot.jobs] if screen.snapshot else []

            def ended() -> bool:
                return bool(statuses()) and set(statuses()) == {"finished"}

            # the example's jobs take a second or two: the running phase may pass unseen
            await _until(pilot, lambda: "running" in statuses() or ended(), timeout=300)
            if not ended():
                await pilot.pause()
                save("session_running")
                running = [j for j in screen.snapshot.jobs if j.status == "running"]
                if running:
                    log = LogScreen.for_job(sid, running[0])
                    await app.push_screen(log)
                    await _until(pilot, lambda: log.refreshes > 0, timeout=60)
                    save("log_live")
                    app.pop_screen()
            else:
                print("the jobs ended between two refreshes: no running screenshots this time")
            await _until(
                pilot,
                lambda: bool(statuses()) and set(statuses()) == {"finished"},
                timeout=300,
            )
            await pilot.pause()
            save("session")
            first = screen.snapshot.jobs[0]
            by_id = {i.instance_id: i for i in screen.snapshot.instances}
            detail = JobDetailScreen(sid, first, by_id, first.runendtime)
            await app.push_screen(detail)
            await _until(pilot, lambda: detail.log_lines is not None, timeout=60)
            await pilot.pause()
            save("detail")
            app.pop_screen()
            log = LogScreen.for_job(sid, first)
            await app.push_screen(log)
            await _until(pilot, lambda: log.refreshes > 0, timeout=60)
            save("log")
            app.pop_screen()
            if first.instance_id:
                console = LogScreen.for_console(sid, first.instance_id)
                await app.push_screen(console)
                await _until(pilot, lambda: console.refreshes > 0, timeout=60)
                save("console")
                app.pop_screen()
            app.pop_screen()
            await _until(pilot, lambda: app.screen.id == "sessions")
            app.screen.action_force_refresh()
            before = app.screen.refreshes
            await _until(pilot, lambda: app.screen.refreshes > before)
            save("sessions")
            compose = ComposeScreen(spec_path.parent)
            await app.push_screen(compose)
            await _until(pilot, lambda: compose.choices.instance_types != (), timeout=60)
            await _until(pilot, lambda: compose.valid, timeout=60)  # the cloud has both
            compose.query_one("#lines").focus()
            await pilot.pause()
            save("compose")
        await backend.cleanup(sid)
        await backend.aclose()
    finally:
        await asyncio.to_thread(service.down)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, help="default: screenshots/ (--live) or screenshots/fixed/"
    )
    parser.add_argument("--size", default="100x30", help="terminal size WIDTHxHEIGHT")
    parser.add_argument("--live", action="store_true", help="shoot a real demo session")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    out = args.out or (ROOT / "screenshots" if args.live else ROOT / "screenshots" / "fixed")
    if args.live:
        files = asyncio.run(shoot_live(out, (width, height)))
    else:
        backend = FixedBackend.demo()
        ids = [
            ("session", "081215_1646--eventgen--1816"),
            ("session_mixed", "081215_1650--mixed--a3f0"),
            ("session_1000_jobs", "081215_1600--big--0b1d"),
        ]
        import os

        os.chdir(ROOT)  # the compose screen shows the job dir relative to the repo
        files = asyncio.run(shoot(backend, out, (width, height), ids, Path("examples/eventgen")))
    for f in files:
        print(f.relative_to(ROOT) if f.is_relative_to(ROOT) else f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
