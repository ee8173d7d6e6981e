"""Pilot tests of the log viewer: live tail, follow, wrap, search, save."""

from __future__ import annotations

from textual.widgets import Log
from ui_helpers import wait_for, wait_for_verbs

from awsac_tui.ui.screens.log import LogScreen
from awsac_tui.ui.screens.sessions import SessionsScreen

SID = "081215_1646--eventgen--1816"


async def _log(pilot, backend, jobnr: int = 3, live: bool = True) -> LogScreen:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, SessionsScreen))
    screen = LogScreen(SID, f"job {jobnr}", jobnr=jobnr, live=live, save_name="job.log")
    await app.push_screen(screen)
    await wait_for(pilot, lambda: screen.refreshes > 0)
    return screen


async def _tick(pilot, screen: LogScreen) -> None:
    before = screen.refreshes
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: screen.refreshes > before)


async def test_live_tail_appends_only_new_lines(make_app, backend) -> None:
    backend.logs[3] = "one\ntwo\nthree"
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _log(pilot, backend)
        log = screen.query_one(Log)
        assert log.lines == ["one", "two", "three"]
        backend.logs[3] = "two\nthree\nfour\nfive"  # the rolling tail moved on
        await _tick(pilot, screen)
        assert log.lines == ["one", "two", "three", "four", "five"]
        backend.logs[3] = "completely\nnew"
        await _tick(pilot, screen)
        assert log.lines == ["completely", "new"]


async def test_follow_wrap_search_and_save(make_app, backend, tmp_path) -> None:
    long_line = "x" * 150
    backend.logs[3] = "\n".join(
        [f"line {i}" for i in range(300)] + [long_line, "needle here", "end"]
    )
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _log(pilot, backend)
        log = screen.query_one(Log)
        await pilot.pause()
        assert log.scroll_y == log.max_scroll_y  # following: at the end
        await pilot.press("f")
        assert not screen.follow and not log.auto_scroll
        assert screen.wrap  # under 120 columns long lines wrap from the start
        assert 303 < len(log.lines) <= 305  # only the 150-column line wraps
        assert all(len(line) < 80 for line in log.lines)
        await pilot.pause()
        assert not log.show_horizontal_scrollbar  # no row lost to a sideways scrollbar
        await pilot.press("w")
        assert not screen.wrap and len(log.lines) == 303
        await pilot.pause()
        assert log.show_horizontal_scrollbar  # the 150-column line scrolls sideways
        await pilot.press("w")
        assert screen.wrap and len(log.lines) > 303
        await pilot.press("w")
        assert len(log.lines) == 303
        await pilot.press("slash", *"line 42", "enter")
        assert screen.match_line == 42
        await pilot.press("escape")  # closes the search box, stays on the log
        assert isinstance(app.screen, LogScreen) and app.focused is log
        await pilot.press("n")
        assert screen.match_line == 42  # the only match of "line 42"
        await pilot.press("ctrl+s")  # save is ctrl+s on every screen
        await wait_for_verbs(app)
        saved = (tmp_path / "job.log").read_text().splitlines()
        assert saved[-2:] == ["needle here", "end"] and len(saved) == 303


async def test_saved_log_is_not_polled_again(make_app, backend) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _log(pilot, backend, jobnr=1, live=False)
        assert screen.next_interval() == 3600.0
