"""Pilot tests of the sessions (home) screen on fixed data."""

from __future__ import annotations

from ui_helpers import screen_text, wait_for, wait_for_verbs

from awsac_tui.ui.app import ActionsProvider
from awsac_tui.ui.screens.modals import ConfirmModal, MessageModal
from awsac_tui.ui.screens.session import SessionScreen
from awsac_tui.ui.screens.sessions import SessionsScreen
from awsac_tui.ui.widgets.keyed_table import KeyedTable

EVENTGEN_ID = "081215_1646--eventgen--1816"
MIXED_ID = "081215_1650--mixed--a3f0"
BIG_ID = "081215_1600--big--0b1d"


async def _home(pilot) -> KeyedTable:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SessionsScreen))
    await wait_for(pilot, lambda: pilot.app.screen.refreshes > 0)
    return pilot.app.screen.query_one(KeyedTable)


async def test_sessions_listed_newest_first_with_counts_and_cost(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        table = await _home(pilot)
        keys = [row.key.value for row in table.ordered_rows]
        assert keys == [MIXED_ID, EVENTGEN_ID, BIG_ID]
        text = screen_text(app)
        assert "1 fin 1 save 2 run" in text
        assert "c5.large" in text and "2/2" in text and "~0.04" in text


async def test_filter_narrows_and_escape_restores(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        table = await _home(pilot)
        await pilot.press("slash", *"event")
        assert table.row_count == 1
        assert table.cursor_key == EVENTGEN_ID
        await pilot.press("enter")  # leaves the filter, keeps it
        assert app.focused is table and table.row_count == 1
        await pilot.press("escape")
        assert table.row_count == 3
        assert [r.key.value for r in table.ordered_rows][0] == MIXED_ID


async def test_enter_opens_the_session_and_escape_comes_back(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _home(pilot)
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionScreen))
        assert app.screen.session_id == EVENTGEN_ID
        await pilot.press("escape")
        assert isinstance(app.screen, SessionsScreen)


async def test_cleanup_asks_then_lists_what_was_removed(make_app, backend) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _home(pilot)
        await pilot.press("down", "x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert EVENTGEN_ID in app.screen.question
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageModal))
        assert "volume vol-92e4b1f3" in app.screen.text
        assert ("cleanup", EVENTGEN_ID) in backend.calls
        await pilot.press("escape")
        # the refreshed list shows it cleaned (no instance is left)
        table = app.screen.query_one(KeyedTable)
        await wait_for(pilot, lambda: str(table.row_cells(EVENTGEN_ID)[2]) == "cleaned")


async def test_cleanup_declined_does_nothing(make_app, backend) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _home(pilot)
        await pilot.press("x", "n")
        assert isinstance(app.screen, SessionsScreen)
        assert not [c for c in backend.calls if c[0] == "cleanup"]


async def test_results_downloads_with_progress(make_app, backend, tmp_path) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _home(pilot)
        await pilot.press("down", "r")
        await wait_for(pilot, lambda: ("results", EVENTGEN_ID, tmp_path) in backend.calls)
        await wait_for_verbs(app)
        await pilot.pause()
        assert isinstance(app.screen, SessionsScreen)
        assert any("1 result file(s)" in n.message for n in app._notifications)


async def test_palette_offers_every_bound_action_and_theme_toggles(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _home(pilot)
        titles = [t for t, _, _ in ActionsProvider(app.screen)._commands()]
        for wanted in ("new", "open", "results", "cleanup", "filter", "quit", "more"):
            assert any(t.endswith(f": {wanted}") for t in titles), wanted
        assert app.theme == "textual-dark"
        await pilot.press("ctrl+t")
        assert app.theme == "textual-light"


async def test_failed_list_keeps_rows_and_notifies(make_app, backend) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        table = await _home(pilot)

        async def broken() -> list:
            raise OSError("connection refused")

        backend.list_sessions = broken  # type: ignore[method-assign]
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen.failures == 1)
        assert table.row_count == 3
        assert any("connection refused" in n.message for n in app._notifications)


async def test_live_backend_without_a_cloud_shows_errors_not_tracebacks(
    tmp_path, monkeypatch
) -> None:
    """No records, an AWS profile that does not exist: empty list and a notice, no crash."""
    from awsac_tui.spec import CloudProfile
    from awsac_tui.ui.app import AwsacApp
    from awsac_tui.ui.live import LiveBackend
    from awsac_tui.ui.screens.compose import ComposeScreen

    monkeypatch.setenv("AWSAC_STATE_DIR", str(tmp_path / "state"))
    backend = LiveBackend(CloudProfile(profile="awsac-no-such-profile", region="us-east-1"))
    app = AwsacApp(backend, results_dir=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "Start the local cloud now?" in app.screen.question
        assert "awsac-no-such-profile" in app.screen.question
        await pilot.press("n")  # declined: the list says what to do
        await wait_for(pilot, lambda: app.screen.id == "sessions")
        assert "No sessions yet" in screen_text(app)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen))
        await wait_for(
            pilot, lambda: any("awsac-no-such-profile" in n.message for n in app._notifications)
        )
        assert isinstance(app.screen, ComposeScreen)


async def test_eighty_columns_keep_the_jobs_column_whole(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        table = await _home(pilot)
        await pilot.pause()
        assert table.virtual_size.width <= table.scrollable_content_region.width
        assert table.shown_keys == ["session", "inst", "cost", "jobs"]  # type, age, cloud hidden
        text = screen_text(app)
        assert "1 fin 1 save 2 run" in text and "~0.04" in text
        assert "125/125" in text and "500 fin 100 save 300 run" in text  # the big session whole
        await pilot.resize_terminal(140, 30)
        await wait_for(pilot, lambda: "type" in table.shown_keys)
        assert "c5.large" in screen_text(app)
