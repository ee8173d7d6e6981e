"""End-to-end pilot tests of the TUI on the local cloud through LiveBackend.

Compose the eventgen example from scratch and start it; watch it until every job finishes
(volumes appear, then go); open a job log and the console output; kill a long job from the jobs
table; clean up from the sessions screen.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from fast_autorun import fast_autorun
from textual.widgets import Input, Select
from ui_helpers import EVENTGEN, wait_for

from awsac_tui import records
from awsac_tui.spec import CloudProfile
from awsac_tui.ui.app import AwsacApp
from awsac_tui.ui.live import LiveBackend
from awsac_tui.ui.screens.compose import ComposeScreen, JobLineModal
from awsac_tui.ui.screens.log import LogScreen
from awsac_tui.ui.screens.modals import ConfirmModal, MessageModal
from awsac_tui.ui.screens.session import SessionScreen
from awsac_tui.ui.screens.sessions import SessionsScreen
from awsac_tui.ui.widgets.keyed_table import KeyedTable

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SESSION_TIMEOUT = 240.0


@pytest.fixture(scope="module")
def release_snapshot(local_cloud: Any) -> str:
    from awsac_tui.local import service

    return service.make_snapshot(EVENTGEN / "release", "ATLAS 14.2.10 (ui tests)")


def _scripts_only(dest: Path) -> Path:
    """The eventgen job directory without jobs.cfg/session files: composed from scratch."""
    shutil.copytree(EVENTGEN, dest, ignore=shutil.ignore_patterns("release"))
    for name in ("jobs.cfg", "session.toml", "session.ini"):
        (dest / name).unlink()
    return dest


async def _type_into(pilot, selector: str, text: str) -> None:
    """Focus the field and set its text. Set, not typed: typing is the compose tests' subject
    (tests/ui/test_compose_screen.py), and here a key press costs a round trip to a live app."""
    await pilot.click(selector)
    pilot.app.screen.query_one(selector, Input).value = text


async def _add_line(pilot, snapshot: str, script: str, count: int) -> None:
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, JobLineModal))
    await _type_into(pilot, "#snap-input", snapshot)
    await _type_into(pilot, "#script-input", script)
    await _type_into(pilot, "#count-input", str(count))
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ComposeScreen))


def _status(screen: SessionScreen) -> list[str]:
    return [j.status for j in screen.snapshot.jobs] if screen.snapshot else []


async def test_compose_start_watch_logs_console_cleanup(
    local_cloud: Any, release_snapshot: str, tmp_path: Path
) -> None:
    job_dir = _scripts_only(tmp_path / "eventgen")
    app = AwsacApp(LiveBackend(CloudProfile(local=True)), results_dir=tmp_path, interval_scale=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SessionsScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen))
        compose = app.screen
        await wait_for(pilot, lambda: compose.choices.instance_types != (), timeout=60)
        await _type_into(pilot, "#job-dir", str(job_dir))
        await pilot.press("enter")
        await _type_into(pilot, "#shortdescr", "eventgen")
        compose.query_one("#instance-type", Select).value = "c5.large"
        assert compose.query_one("#image", Select).value == local_cloud.image_id
        # the account's snapshots are offered with their descriptions
        assert (release_snapshot, "ATLAS 14.2.10 (ui tests)") in [
            (c.snapshot_id, c.description) for c in compose.choices.snapshots
        ]
        await _type_into(pilot, "#bucket", "atlassessions")
        compose.query_one("#lines").focus()
        await _add_line(pilot, release_snapshot, "gen_30.sh", 2)
        await _add_line(pilot, release_snapshot, "gen_1000.sh", 2)
        await wait_for(pilot, lambda: compose.valid, timeout=60)  # the cloud has both
        assert compose.problems == []
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: (job_dir / "session.toml").is_file(), timeout=30)
        assert (job_dir / "jobs.cfg").is_file()

        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), timeout=60)
        assert "Run exactly 2 instances of type c5.large" in app.screen.question
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionScreen), timeout=60)
        screen = app.screen
        sid = screen.session_id

        seen_volumes: set[str] = set()

        def finished() -> bool:
            if screen.snapshot:
                seen_volumes.update(v.volume_id for v in screen.snapshot.volumes)
            return _status(screen) == ["finished"] * 4

        await wait_for(pilot, finished, timeout=SESSION_TIMEOUT)
        jobs = screen.query_one("#jobs", KeyedTable)
        assert [str(jobs.row_cells(str(n))[2]) for n in range(1, 5)] == ["finished"] * 4
        assert seen_volumes, "no volume was ever shown"

        # the saved log of job 1
        jobs.focus()
        jobs.move_cursor(row=0)
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen))
        log = app.screen
        await wait_for(pilot, lambda: log.refreshes > 0, timeout=30)
        assert any("ATLAS JOB BEGIN: gen 30 events" in line for line in log.raw_lines)
        await pilot.press("escape")

        # the console output of the instance that ran job 1
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen))
        console = app.screen
        await wait_for(pilot, lambda: console.refreshes > 0, timeout=30)
        assert console.raw_lines, "empty console output"
        await pilot.press("escape")

        # volumes go once the instances have terminated
        await wait_for(
            pilot,
            lambda: (
                screen.snapshot is not None
                and not [v for v in screen.snapshot.volumes if v.state not in ("deleted",)]
            ),
            timeout=SESSION_TIMEOUT,
        )

        # cleanup from the sessions screen
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionsScreen))
        home = app.screen
        table = home.query_one(KeyedTable)
        await wait_for(pilot, lambda: table.row_cells(sid) is not None, timeout=30)
        table.move_cursor(row=table.get_row_index(sid))
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageModal), timeout=SESSION_TIMEOUT)
        assert "sessionarchive.tar.bz2" in app.screen.text
        await pilot.press("escape")
        assert records.load_record(sid).state == "cleaned"


async def test_kill_a_long_job_from_the_jobs_table(local_cloud: Any, tmp_path: Path) -> None:
    job_dir = tmp_path / "long"
    job_dir.mkdir()
    (job_dir / "long.sh").write_text("#!/bin/sh\necho started long job\nsleep 600\n")
    (job_dir / "short.sh").write_text("#!/bin/sh\necho short\n")
    # the tests' session autorun: the worker polls for kills every 0.5 s instead of 5 s
    (job_dir / "awsac_all_instances_autorun.sh").write_text(fast_autorun())
    app = AwsacApp(LiveBackend(CloudProfile(local=True)), results_dir=tmp_path, interval_scale=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SessionsScreen))
        compose = ComposeScreen(job_dir)
        await app.push_screen(compose)
        await wait_for(pilot, lambda: compose.choices.instance_types != (), timeout=60)
        await _type_into(pilot, "#shortdescr", "longjob")
        compose.query_one("#instance-type", Select).value = "c5.large"
        await _type_into(pilot, "#bucket", "atlassessions")
        compose.query_one("#status-store", Select).value = "s3"
        compose.query_one("#lines").focus()
        await _add_line(pilot, "-", "long.sh", 1)
        await _add_line(pilot, "-", "short.sh", 1)
        await wait_for(pilot, lambda: compose.valid, timeout=60)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), timeout=60)
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionScreen), timeout=60)
        screen = app.screen
        await wait_for(pilot, lambda: _status(screen)[:1] == ["running"], timeout=SESSION_TIMEOUT)
        jobs = screen.query_one("#jobs", KeyedTable)
        jobs.focus()
        jobs.move_cursor(row=0)
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: _status(screen)[:1] == ["killed"], timeout=SESSION_TIMEOUT)
        assert str(jobs.row_cells("1")[2]) == "killed"
        # clean up what is left (no assertions on timing)
        await app.backend.cleanup(screen.session_id)
