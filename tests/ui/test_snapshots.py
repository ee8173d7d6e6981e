"""Snapshot tests (pytest-textual-snapshot) of the screens on FixedBackend data.

Fixed clock and ids, fixed terminal sizes. After a deliberate change of a screen, review the
SVG diff, then run with ``--snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ui_helpers import wait_for

from awsac_tui.testing.fixed_backend import FixedBackend
from awsac_tui.ui.app import AwsacApp
from awsac_tui.ui.screens.compose import ComposeScreen
from awsac_tui.ui.screens.log import LogScreen
from awsac_tui.ui.screens.session import SessionScreen

EVENTGEN_ID = "081215_1646--eventgen--1816"
MIXED_ID = "081215_1650--mixed--a3f0"


async def _home_ready(pilot) -> None:
    await wait_for(pilot, lambda: pilot.app.screen.id == "sessions")
    await wait_for(pilot, lambda: pilot.app.screen.refreshes > 0)


def _open(session_id: str):
    async def run_before(pilot) -> None:
        await _home_ready(pilot)
        pilot.app.open_session(session_id)
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, SessionScreen))
        await wait_for(pilot, lambda: pilot.app.screen.refreshes > 0)
        await pilot.pause()

    return run_before


SIZES = [(80, 24), (160, 45)]  # over ssh, and a big terminal


@pytest.mark.parametrize("size", SIZES)
def test_sessions_screen(snap_compare, size) -> None:
    assert snap_compare(AwsacApp(FixedBackend.demo()), terminal_size=size, run_before=_home_ready)


@pytest.mark.parametrize("size", SIZES)
def test_session_screen(snap_compare, size) -> None:
    app = AwsacApp(FixedBackend.demo())
    assert snap_compare(app, terminal_size=size, run_before=_open(EVENTGEN_ID))


def test_session_screen_mixed_statuses(snap_compare) -> None:
    app = AwsacApp(FixedBackend.demo())
    assert snap_compare(app, terminal_size=(120, 34), run_before=_open(MIXED_ID))


@pytest.mark.parametrize("size", SIZES)
def test_compose_screen(snap_compare, monkeypatch, size) -> None:
    monkeypatch.chdir(Path(__file__).parent)  # the job dir shows as a relative path

    async def run_before(pilot) -> None:
        await _home_ready(pilot)
        screen = ComposeScreen(Path("data/eventgen"))
        await pilot.app.push_screen(screen)
        await wait_for(pilot, lambda: screen.choices.instance_types != ())
        await wait_for(pilot, lambda: screen.lines != [] and screen.valid)
        screen.query_one("#lines").focus()
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(AwsacApp(FixedBackend.demo()), terminal_size=size, run_before=run_before)


def test_job_detail_screen(snap_compare) -> None:
    """A lost job of its 2nd attempt: the whole cause, both attempts, the last log lines."""

    async def run_before(pilot) -> None:
        await _open(MIXED_ID)(pilot)
        screen = pilot.app.screen
        jobs = screen.query_one("#jobs")
        jobs.move_cursor(row=jobs.get_row_index("5"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: getattr(pilot.app.screen, "log_lines", None) is not None)
        await pilot.pause()

    app = AwsacApp(FixedBackend.demo())
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_log_screen(snap_compare) -> None:
    async def run_before(pilot) -> None:
        await _home_ready(pilot)
        snap = pilot.app.backend.snapshots[EVENTGEN_ID]
        screen = LogScreen.for_job(EVENTGEN_ID, snap.jobs[2])
        await pilot.app.push_screen(screen)
        await wait_for(pilot, lambda: screen.refreshes > 0)
        await pilot.pause()

    assert snap_compare(
        AwsacApp(FixedBackend.demo()), terminal_size=(80, 24), run_before=run_before
    )
