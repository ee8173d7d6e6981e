"""Pilot tests of the live session screen: diff updates, failures, kill/terminate, log, ssh."""

from __future__ import annotations

from dataclasses import replace

import pytest
from ui_helpers import screen_text, wait_for, wait_for_verbs

from awsac_tui.testing.fixed_backend import big_snapshot
from awsac_tui.ui.screens.log import LogScreen
from awsac_tui.ui.screens.modals import ConfirmModal, MessageModal
from awsac_tui.ui.screens.session import SessionScreen
from awsac_tui.ui.widgets.keyed_table import KeyedTable
from awsac_tui.ui.widgets.timeline import Timeline

EVENTGEN_ID = "081215_1646--eventgen--1816"
MIXED_ID = "081215_1650--mixed--a3f0"
BIG_ID = "081215_1600--big--0b1d"


async def _open(pilot, session_id: str) -> SessionScreen:
    app = pilot.app
    await wait_for(pilot, lambda: app.screen.id == "sessions")
    app.open_session(session_id)
    await wait_for(pilot, lambda: isinstance(app.screen, SessionScreen))
    screen = app.screen
    await wait_for(pilot, lambda: screen.refreshes > 0)
    return screen


def _jobs(screen: SessionScreen) -> KeyedTable:
    return screen.query_one("#jobs", KeyedTable)


async def _tick(pilot, screen: SessionScreen) -> None:
    before = screen.refreshes
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: screen.refreshes > before)


async def test_tables_header_and_timeline_show_the_snapshot(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot, EVENTGEN_ID)
        assert screen.query_one("#instances", KeyedTable).row_count == 2
        vols = screen.query_one("#volumes", KeyedTable)
        # two root volumes (the image's snapshot) and two job volumes (jobs.cfg's snapshot)
        assert {r.key.value: str(vols.row_cells(r.key.value)[1]) for r in vols.ordered_rows} == {
            "vol-0c41d2e5": "root",
            "vol-0c41d2e6": "root",
            "vol-92e4b1f3": "job",
            "vol-95e4b1f7": "job",
        }
        jobs = _jobs(screen)
        assert [str(jobs.row_cells(str(n))[2]) for n in range(1, 5)] == [
            "finished",
            "saving",
            "running",
            "running",
        ]
        text = screen_text(app)
        assert "4 jobs: 1 fin 1 save 2 run" in text and "25%" in text
        assert len(screen.query_one(Timeline).lanes) == 4


async def test_silent_and_lost_are_highlighted(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await _open(pilot, MIXED_ID)
        inst = screen.query_one("#instances", KeyedTable)
        assert str(inst.row_cells("i-33f64f66")[2]) == "silent"
        lost = _jobs(screen).row_cells("5")[2]
        # the cause follows the status (cut by the column; enter shows it whole)
        assert str(lost).startswith("lost instance i-33f64f65") and "reverse" in str(lost.style)
        assert "is silent" in screen_text(app)  # the snapshot's notice


async def test_tick_on_1000_jobs_updates_cells_in_place(make_app, backend, monkeypatch) -> None:
    """A refresh never clears the table: the cursor row and the scroll position are kept."""
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot, BIG_ID)
        jobs = _jobs(screen)
        assert jobs.row_count == 1000
        jobs.focus()
        jobs.move_cursor(row=500, animate=False)
        await pilot.pause()
        scroll_before = jobs.scroll_y
        assert scroll_before > 0
        before = {k: str(jobs.row_cells(k)[2]) for k in ("1", "500", "1000")}

        def no_clear(*args, **kwargs):
            raise AssertionError("clear() on a tick")

        monkeypatch.setattr(jobs, "clear", no_clear)
        backend.snapshots[BIG_ID] = big_snapshot(tick=1)
        await _tick(pilot, screen)
        after = {k: str(jobs.row_cells(k)[2]) for k in ("1", "500", "1000")}
        assert after != before  # statuses moved on
        assert jobs.cursor_row == 500
        assert jobs.cursor_key == "501"  # row 500 (0-based) is job 501
        assert jobs.scroll_y == scroll_before
        assert jobs.row_count == 1000


async def test_new_and_gone_rows_are_added_and_removed(make_app, backend) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot, EVENTGEN_ID)
        snap = backend.snapshots[EVENTGEN_ID]
        backend.snapshots[EVENTGEN_ID] = replace(snap, volumes=snap.volumes[:1])
        await _tick(pilot, screen)
        vols = screen.query_one("#volumes", KeyedTable)
        assert vols.row_count == 1 and vols.row_cells("vol-95e4b1f7") is None


async def test_failed_refresh_keeps_the_last_snapshot(make_app, backend) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot, EVENTGEN_ID)
        backend.fail_refresh = True
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.failures == 1)
        assert _jobs(screen).row_count == 4
        assert screen.snapshot is not None and screen.snapshot.session_id == EVENTGEN_ID
        assert any("throttled" in n.message for n in app._notifications)
        assert screen.interval >= 2.0  # backs off
        backend.fail_refresh = False
        await _tick(pilot, screen)


async def test_interval_adapts_and_polls_pause_under_a_modal(make_app, backend) -> None:
    app = make_app(interval_scale=1.0)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot, EVENTGEN_ID)
        assert screen.next_interval() == 5.0  # steady: all instances running
        snap = backend.snapshots[EVENTGEN_ID]
        starting = replace(snap, instances=(replace(snap.instances[0], state="pending"),))
        backend.snapshots[EVENTGEN_ID] = starting
        await _tick(pilot, screen)
        assert screen.next_interval() == 1.0  # fast while instances start
        await pilot.press("down", "down", "k")
        assert isinstance(app.screen, ConfirmModal)
        assert screen.paused()
        await pilot.press("n")
        assert not screen.paused()


async def test_kill_job_asks_first_then_shows_killed(make_app, backend) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot, EVENTGEN_ID)
        jobs = _jobs(screen)
        jobs.move_cursor(row=2)  # job 3, running
        await pilot.press("k")
        assert isinstance(app.screen, ConfirmModal) and "Kill job 3" in app.screen.question
        await pilot.press("y")
        await wait_for(pilot, lambda: ("kill_job", EVENTGEN_ID, 3) in backend.calls)
        await wait_for(pilot, lambda: str(jobs.row_cells("3")[2]) == "killed")
        assert jobs.cursor_row == 2


async def test_kill_of_an_ended_job_is_refused(make_app, backend) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _open(pilot, EVENTGEN_ID)
        await pilot.press("k")  # job 1 has finished
        assert isinstance(app.screen, SessionScreen)
        assert not [c for c in backend.calls if c[0] == "kill_job"]


async def test_terminate_instance_of_the_focused_row(make_app, backend) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot, EVENTGEN_ID)
        screen.query_one("#instances", KeyedTable).focus()
        await pilot.press("down", "t")
        assert isinstance(app.screen, ConfirmModal) and "i-33f64f5b" in app.screen.question
        await pilot.press("y")
        await wait_for_verbs(app)
        assert ("terminate_instance", EVENTGEN_ID, "i-33f64f5b") in backend.calls
        inst = screen.query_one("#instances", KeyedTable)
        await wait_for(pilot, lambda: str(inst.row_cells("i-33f64f5b")[2]) == "shutting-down")


async def test_ssh_without_suspend_shows_the_command(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _open(pilot, EVENTGEN_ID)
        await pilot.press("s")  # headless tests cannot suspend
        assert isinstance(app.screen, MessageModal)
        assert "ssh -i" in app.screen.text and "ec2-user@ec2-75-101-200-10" in app.screen.text
        await pilot.press("escape")
        assert isinstance(app.screen, SessionScreen)


@pytest.mark.parametrize(("focus", "kind"), [("#jobs", "job"), ("#instances", "console")])
async def test_l_opens_job_log_or_c_the_console(make_app, backend, focus, kind) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot, EVENTGEN_ID)
        screen.query_one(focus).focus()
        await pilot.press("down", "l" if kind == "job" else "c")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen))
        log_screen = app.screen
        await wait_for(pilot, lambda: log_screen.refreshes > 0)
        if kind == "job":
            assert log_screen.jobnr == 2 and log_screen.live
            assert log_screen.raw_lines[-1] == "generating event 412/1000 ..."
        else:
            assert log_screen.instance_id == "i-33f64f5b"
            assert "processjobs: job 3 running" in log_screen.raw_lines
        await pilot.press("escape")
        assert app.screen is screen


async def test_c_opens_console_of_the_jobs_instance(make_app, backend) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _open(pilot, EVENTGEN_ID)
        await pilot.press("down", "down", "c")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen))
        assert app.screen.instance_id == "i-33f64f5b"


async def test_perf_probe_measures_refresh_and_key_latency() -> None:
    """The probe the benchmark in bench/ calls (small here; bench runs 1,000 jobs)."""
    from awsac_tui.testing.fixed_backend import big_snapshot
    from awsac_tui.testing.perf import measure

    result = await measure(n_jobs=40, ticks=2, keys=3, size=(100, 30))
    assert len(result.refresh_ms) == 2 and len(result.key_ms) == 3
    # what it timed really happened: the table shows the last tick's states, the cursor moved
    assert result.shown_statuses == tuple(j.status for j in big_snapshot(40, tick=2).jobs)
    assert result.shown_statuses != tuple(j.status for j in big_snapshot(40, tick=1).jobs)
    assert result.cursor_row == 3
    assert all(0 < ms < 60_000 for ms in result.refresh_ms + result.key_ms)
    summary = result.summary()
    assert summary["refresh_median_ms"] <= summary["refresh_max_ms"]
    assert summary["key_median_ms"] <= summary["key_max_ms"] == max(result.key_ms)


async def test_polls_pause_while_the_app_is_in_the_background(make_app) -> None:
    from textual.events import AppBlur, AppFocus

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot, EVENTGEN_ID)
        app.post_message(AppBlur())
        await pilot.pause()
        assert screen.paused()
        app.post_message(AppFocus())
        await pilot.pause()
        assert not screen.paused()


async def test_help_lists_the_screen_keys(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _open(pilot, EVENTGEN_ID)
        await pilot.press("question_mark")
        assert isinstance(app.screen, MessageModal)
        for line in ("l  log", "k  kill", "t  terminate", "r  results", "ctrl+p  command palette"):
            assert line in app.screen.text
        assert "ctrl+t  dark/light theme" in app.screen.text
        keys = [line.split()[0] for line in app.screen.text.splitlines() if line.strip()]
        assert len(keys) == len(set(keys)), keys  # each key once


async def test_read_only_refuses_kill_terminate_and_cleanup(make_app, backend) -> None:
    app = make_app(read_only=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await _open(pilot, EVENTGEN_ID)
        await pilot.press("down", "down", "k", "t", "x")
        assert isinstance(app.screen, SessionScreen)
        assert not [
            c for c in backend.calls if c[0] in ("kill_job", "terminate_instance", "cleanup")
        ]
        await pilot.press("l")  # reading is still allowed
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen))


async def test_job_filter_narrows_and_restores_in_order(make_app, backend) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot, BIG_ID)
        jobs = _jobs(screen)
        await pilot.press("slash", *"fail")
        assert jobs.row_count == 100
        assert all(
            str(jobs.row_cells(r.key.value)[2]).startswith("failed") for r in jobs.ordered_rows
        )
        await pilot.press("enter")
        assert app.focused is jobs
        # a tick while filtered keeps the filter
        backend.snapshots[BIG_ID] = big_snapshot(tick=1)
        await _tick(pilot, screen)
        assert 0 < jobs.row_count < 1000
        await pilot.press("slash", "escape")
        assert jobs.row_count == 1000
        assert [r.key.value for r in jobs.ordered_rows[:3]] == ["1", "2", "3"]
        assert jobs.ordered_rows[-1].key.value == "1000"
        assert isinstance(app.screen, SessionScreen)  # esc cleared the filter, did not leave


def _overflowing(screen) -> list[str]:
    """Tables whose columns are wider than the table (a horizontal scrollbar would eat a row)."""
    return [
        str(t.id)
        for t in screen.query(KeyedTable)
        if t.display and t.virtual_size.width > t.scrollable_content_region.width
    ]


@pytest.mark.parametrize(
    ("size", "stacked", "hidden"),
    [
        ((80, 24), True, {"instances": {"dns"}, "volumes": {"device"}, "jobs": {"instance"}}),
        ((180, 40), False, {"instances": set(), "volumes": set(), "jobs": set()}),
    ],
)
async def test_tables_fit_the_terminal_without_horizontal_scrolling(
    make_app, size, stacked, hidden
) -> None:
    app = make_app()
    async with app.run_test(size=size) as pilot:
        screen = await _open(pilot, EVENTGEN_ID)
        await pilot.pause()
        assert _overflowing(screen) == []
        inst = screen.query_one("#instances", KeyedTable)
        vols = screen.query_one("#volumes", KeyedTable)
        # narrow: instances above volumes, each the full width; wide: side by side
        assert (vols.region.y > inst.region.y) is stacked
        for table in (inst, vols, _jobs(screen)):
            shown = set(table.shown_keys)
            assert not hidden[table.id] & shown, table.id
            assert shown >= {"state", "status", "li", "zone", "kind", "started"} & set(
                table.column_keys
            )
        text = screen_text(app)
        assert "us-east-1b" in text  # the zone in full
        assert "root" in text and "job" in text


async def test_hidden_columns_come_back_when_the_terminal_widens(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, EVENTGEN_ID)
        jobs = _jobs(screen)
        jobs.move_cursor(row=2)
        assert "instance" not in jobs.shown_keys
        await pilot.resize_terminal(200, 40)
        await wait_for(pilot, lambda: "instance" in jobs.shown_keys)
        assert jobs.cursor_key == "3"  # the cursor stays on its job
        assert str(jobs.get_cell("3", "instance")) == str(jobs.row_cells("3")[8])
        assert _overflowing(screen) == []


async def test_eighty_columns_show_every_job_count_and_the_instances_up(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(pilot, MIXED_ID)
        text = screen_text(app)
        assert "2 fin 1 run 2 pend 1 fail 1 kill 3 lost" in text  # on the jobs table's border
        assert "10 jobs  2/3 up  ↻" in text
