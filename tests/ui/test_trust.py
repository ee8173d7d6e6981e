"""Issue 15, one pilot test per point, at the size where it broke (80x24 over ssh; 160x45)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import Input, Log
from ui_helpers import EVENTGEN, screen_text, wait_for, wait_for_verbs

from awsac_tui.testing.fixed_backend import FIXED_NOW
from awsac_tui.ui.screens.compose import ComposeScreen, JobLineModal
from awsac_tui.ui.screens.detail import JobDetailScreen
from awsac_tui.ui.screens.log import LogScreen
from awsac_tui.ui.screens.modals import ConfirmModal
from awsac_tui.ui.screens.session import SessionScreen
from awsac_tui.ui.screens.sessions import SessionsScreen
from awsac_tui.ui.widgets.keyed_table import KeyedTable

EVENTGEN_ID = "081215_1646--eventgen--1816"
MIXED_ID = "081215_1650--mixed--a3f0"
SNAP = "snap-9fd4a2f0"
SIZES = [(80, 24), (160, 45)]


async def _home(pilot) -> SessionsScreen:
    await wait_for(pilot, lambda: pilot.app.screen.id == "sessions")
    await wait_for(pilot, lambda: pilot.app.screen.refreshes > 0)
    return pilot.app.screen


async def _open(pilot, session_id: str) -> SessionScreen:
    await _home(pilot)
    pilot.app.open_session(session_id)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SessionScreen))
    screen = pilot.app.screen
    await wait_for(pilot, lambda: screen.refreshes > 0)
    return screen


async def _tick(pilot, screen) -> None:
    before = screen.refreshes
    screen.action_force_refresh()
    await wait_for(pilot, lambda: screen.refreshes > before)


def _footer(app) -> str:
    return screen_text(app).splitlines()[-1]


async def _settled_footer(pilot) -> str:
    """The footer once it has caught up with the focus (it ends with ``? more`` when it fits)."""
    try:
        await wait_for(pilot, lambda: _footer(pilot.app).rstrip().endswith("? more"), timeout=10)
    except AssertionError:
        pass  # the assertion on the text says what is wrong
    return _footer(pilot.app)


async def _compose(pilot, job_dir: Path | None = None) -> ComposeScreen:
    await _home(pilot)
    screen = ComposeScreen(job_dir)
    await pilot.app.push_screen(screen)
    await wait_for(pilot, lambda: screen.choices.instance_types != ())
    if job_dir is not None:
        await wait_for(pilot, lambda: not screen.loading and screen.lines != [])
    return screen


def _job_dir(tmp_path: Path) -> Path:
    d = tmp_path / "eventgen"
    shutil.copytree(EVENTGEN, d, ignore=shutil.ignore_patterns("release"))
    return d


# ---- keys -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_every_footer_fits_and_ends_with_more(make_app, size, tmp_path) -> None:
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await _home(pilot)
        footers = {"sessions": await _settled_footer(pilot)}
        screen = await _open(pilot, MIXED_ID)
        footers["session/jobs"] = await _settled_footer(pilot)
        screen.query_one("#instances").focus()
        await pilot.pause()
        footers["session/instances"] = await _settled_footer(pilot)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.id == "sessions")
        await _compose(pilot, _job_dir(tmp_path))
        footers["compose"] = await _settled_footer(pilot)
    for name, text in footers.items():
        assert text.rstrip().endswith("? more"), f"{name}: {text!r}"
    assert "r results" in footers["sessions"] and "r results" in footers["session/jobs"]
    assert "l log" in footers["session/jobs"] and "k kill" in footers["session/jobs"]
    # keys act on the focused table's rows: no job keys on instances, no terminate on jobs
    assert "l log" not in footers["session/instances"]
    assert "k kill" not in footers["session/instances"]
    assert "t terminate" in footers["session/instances"]
    assert "t terminate" not in footers["session/jobs"]


async def test_l_on_the_instances_table_does_not_open_the_console(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, EVENTGEN_ID)
        screen.query_one("#instances").focus()
        await pilot.press("l")
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("c")  # the instance's own key does
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen))
        assert app.screen.instance_id is not None


async def test_results_is_r_and_q_quits_on_every_screen(make_app, backend) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, EVENTGEN_ID)
        await pilot.press("r")
        await wait_for_verbs(app)
        assert ("results", EVENTGEN_ID, app.results_dir) in backend.calls
        await pilot.press("enter")  # the job detail has it too
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        calls = len([c for c in backend.calls if c[0] == "results"])
        await pilot.press("r")
        await wait_for_verbs(app)
        assert len([c for c in backend.calls if c[0] == "results"]) == calls + 1
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.press("q")
        await wait_for(pilot, lambda: app.return_code is not None or not app.is_running)


# ---- job detail and true state ----------------------------------------------------------


async def test_enter_on_a_job_shows_the_whole_cause_and_its_attempts(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, MIXED_ID)
        jobs = screen.query_one("#jobs", KeyedTable)
        jobs.move_cursor(row=jobs.get_row_index("5"))
        # the table cuts the cause ...
        assert "terminated from outside while the job ran (state" not in screen_text(app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        detail = app.screen
        await wait_for(pilot, lambda: detail.log_lines is not None)
        text = " ".join(screen_text(app).split())
        # ... the detail view never does
        assert (
            "instance i-33f64f65 terminated from outside while the job ran (state reason: " in text
        )
        assert "Client.UserInitiatedShutdown: User initiated shutdown)" in text
        assert "spot interruption notice at 16:51:54Z" in text  # attempt 1's cause
        assert "1 lost i-0badc0de" in text and "2 lost i-33f64f65" in text
        assert "snap-1b2c3d4e" in text and "generating event 412/1000" in detail.log_lines[-1]
        assert "results none: the job did not end" in text


async def test_a_pending_job_says_not_started_yet(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, MIXED_ID)
        jobs = screen.query_one("#jobs", KeyedTable)
        jobs.move_cursor(row=jobs.get_row_index("9"))
        app.backend.logs[9] = ""
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen))
        log = app.screen
        await wait_for(pilot, lambda: log.refreshes > 0)
        assert "Not started yet" in "\n".join(log.query_one(Log).lines)


async def test_clocks_stop_when_the_instance_is_terminated(make_app, backend) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, EVENTGEN_ID)
        jobs = screen.query_one("#jobs", KeyedTable)
        screen.query_one("#instances").focus()
        screen.query_one("#instances", KeyedTable).move_cursor(row=1)  # LI 1 runs jobs 3, 4
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for_verbs(app)
        await _tick(pilot, screen)
        before = [str(jobs.row_cells(n)[6]) for n in ("3", "4")]
        backend.clock = FIXED_NOW.replace(minute=FIXED_NOW.minute + 1)  # a minute later
        await _tick(pilot, screen)
        assert [str(jobs.row_cells(n)[6]) for n in ("3", "4")] == before
        assert str(jobs.row_cells("2")[6]) != ""  # the saving job on the live instance: as is


async def test_cleaned_session_keeps_its_last_job_states(make_app, backend) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, EVENTGEN_ID)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for_verbs(app)
        await pilot.press("escape")  # the list of what was removed
        await _tick(pilot, screen)
        assert "cleaned" in screen_text(app).splitlines()[0]
        statuses = [j.status for j in screen.snapshot.jobs]
        assert statuses == ["finished", "saving", "running", "running"]
        await pilot.press("escape")
        home = await _home(pilot)
        await _tick(pilot, home)
        assert "cleaned" in screen_text(app)
        await pilot.press("h")  # the list can hide them
        await pilot.pause()
        assert EVENTGEN_ID not in screen_text(app)
        await pilot.press("h")
        await pilot.pause()
        assert EVENTGEN_ID in screen_text(app)


async def test_retry_key_runs_lost_jobs_again(make_app, backend) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, MIXED_ID)
        jobs = screen.query_one("#jobs", KeyedTable)
        jobs.move_cursor(row=jobs.get_row_index("6"))
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "Run job 6 again" in app.screen.question
        await pilot.press("y")
        await wait_for_verbs(app)
        assert ("retry", MIXED_ID, (6,)) in backend.calls
        await wait_for(pilot, lambda: str(jobs.row_cells("6")[2]) == "pending")
        assert str(jobs.row_cells("6")[7]) == "2"  # the attempts column


async def test_auto_retry_asks_once_per_attempt_up_to_max_attempts(make_app, backend) -> None:
    backend.max_attempts = 2
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, MIXED_ID)
        await pilot.press("A")
        await wait_for_verbs(app)
        retried = [c for c in backend.calls if c[0] == "retry"]
        # jobs 6 and 8 are lost on attempt 1; job 5 is lost on its 2nd, the most allowed
        assert retried == [("retry", MIXED_ID, (6, 8))]
        assert "auto-retry" in screen_text(app).splitlines()[0]
        await _tick(pilot, screen)
        await _tick(pilot, screen)
        assert len([c for c in backend.calls if c[0] == "retry"]) == 1


# ---- compose ----------------------------------------------------------------------------


async def test_escape_on_a_changed_draft_asks_first(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _compose(pilot)
        await pilot.press("escape")  # nothing typed: leaves at once
        await wait_for(pilot, lambda: app.screen.id == "sessions")
        screen = await _compose(pilot)
        screen.query_one("#shortdescr").focus()
        await pilot.press(*"mine")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.query_one("#shortdescr", Input).value == "mine"
        await pilot.press("escape", "y")
        await wait_for(pilot, lambda: app.screen.id == "sessions")


async def test_jump_key_focus_ring_and_placeholders(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _compose(pilot)
        box = screen.query_one("#job-dir", Input)
        assert app.focused is box
        assert box.styles.outline_left[0] != ""  # a bar on the left of the focused field
        assert box.placeholder.startswith("e.g.")
        assert box.get_component_rich_style("input--placeholder").italic
        other = screen.query_one("#bucket", Input)
        assert other.styles.outline_left[0] == ""
        await pilot.press("ctrl+l")  # one key to the job lines
        assert app.focused is screen.query_one("#lines")


async def test_a_new_lines_problem_names_its_line(make_app, tmp_path) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _compose(pilot, _job_dir(tmp_path))
        screen.query_one("#lines").focus()
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, JobLineModal))
        modal = app.screen
        modal.query_one("#snap-input", Input).value = SNAP
        modal.query_one("#script-input", Input).value = "nope.sh"
        await pilot.click("#ok")
        await wait_for(pilot, lambda: app.screen is screen)
        text = "\n".join(screen.problems)
        assert "jobs.cfg, line 9: script 'nope.sh' is not in the session archive" in text
        assert "line 0" not in text


async def test_saving_over_a_file_changed_since_it_was_read_asks(make_app, tmp_path) -> None:
    job_dir = _job_dir(tmp_path)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _compose(pilot, job_dir)
        screen.lines = [replace(jl, snapshot=SNAP) for jl in screen.lines]
        screen.query_one("#image").value = "ami-0abc1234"
        screen.show_lines()
        await wait_for(pilot, lambda: screen.valid)
        (job_dir / "jobs.cfg").write_text("# edited elsewhere\n-;gen_30.sh;1\n")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "changed since it was read" in app.screen.question
        await pilot.press("n")
        await wait_for_verbs(app)
        assert (job_dir / "jobs.cfg").read_text() == "# edited elsewhere\n-;gen_30.sh;1\n"


# ---- first run --------------------------------------------------------------------------


async def test_first_run_offers_the_local_cloud_and_a_snapshot(make_app, backend, tmp_path):
    backend.snapshots.clear()
    backend.cloud_problem = "No AWS credentials found."
    release = tmp_path / "release"
    release.mkdir()
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "No cloud answers: No AWS credentials found." in app.screen.question
        await pilot.press("y")
        await wait_for(pilot, lambda: ("start_local_cloud",) in backend.calls)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "Make a snapshot from a directory now?" in app.screen.question
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen.query("#dir-input"))
        app.screen.query_one("#dir-input", Input).value = str(release)
        app.screen.query_one("#descr-input", Input).value = "my release"
        await pilot.click("#ok")
        await wait_for(pilot, lambda: any(c[0] == "make_snapshot" for c in backend.calls))
        await wait_for(pilot, lambda: app.screen.id == "sessions")
        assert "No sessions yet" in screen_text(app)
        assert backend.choices.snapshots[0].description == "my release"


async def test_after_the_first_session_keys_reach_the_list(make_app, backend) -> None:
    """An empty list hides its table; once a session shows up, the keys act on it (not on a
    hidden filter box that kept the focus)."""
    saved = dict(backend.snapshots)
    backend.snapshots.clear()
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        home = await _home(pilot)
        assert "No sessions yet" in screen_text(app) and "press n" in screen_text(app).lower()
        backend.snapshots.update(saved)
        await _tick(pilot, home)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))


def test_awsac_local_runs_the_tui_on_the_local_cloud(monkeypatch) -> None:
    from awsac_tui import cli

    seen: list[bool] = []
    monkeypatch.setattr(cli, "run_tui", lambda local=False: seen.append(local) or 0)
    assert cli.main(["--local"]) == 0 and seen == [True]
    assert cli.main([]) == 0 and seen == [True, False]


def _typed_in_one_read(app, keys: str) -> None:
    """Post keys the way the driver does when they arrive in one read: all at once."""
    from textual import events

    for ch in keys:
        if ch == "\t":
            app.post_message(events.Key("tab", "\t"))
        else:
            app.post_message(events.Key(ch, ch))


async def test_a_tab_typed_right_after_text_moves_on(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _compose(pilot)
        assert app.focused is screen.query_one("#job-dir")
        _typed_in_one_read(app, "ab\tcd")
        await wait_for(pilot, lambda: screen.query_one("#shortdescr", Input).value == "cd")
        assert screen.query_one("#job-dir", Input).value == "ab"


async def test_textual_still_sends_keys_after_a_tab_to_the_old_widget() -> None:
    """The upstream bug the app works around (docs/tui.md): a bare Textual app puts what
    follows a Tab in the same read into the box the Tab left. When this fails, Textual fixed
    it, and the priority Tab bindings in AwsacApp.BINDINGS may go."""
    from textual.app import App

    class Bare(App):
        def compose(self):
            yield Input(id="a")
            yield Input(id="b")

    app = Bare()
    async with app.run_test() as pilot:
        _typed_in_one_read(app, "ab\tcd")
        await wait_for(pilot, lambda: app.focused is app.query_one("#b"))
        await pilot.pause()
        assert app.query_one("#a", Input).value == "abcd"
        assert app.query_one("#b", Input).value == ""


def test_the_plan_shows_the_queue_its_time_and_the_quota() -> None:
    from awsac_tui.ui.screens.compose import PlanInput, describe_plan

    text = str(
        describe_plan(
            PlanInput(
                10_000,
                2,
                "c5.large",
                0.085,
                queue=True,
                max_instances=32,
                job_minutes=1,
                vcpu_quota=64,
                vcpus=2,
            )
        )
    )
    assert "10,000 jobs on 32 × c5.large\n(64 cores, a queue)" in text
    assert "about 2.6 h at 1 min a job" in text  # 157 rounds of 64 jobs
    assert "64 of 64 vCPUs quota" in text
    static = str(describe_plan(PlanInput(4, 2, "c5.large", vcpu_quota=2, vcpus=2)))
    assert "needs 4 vCPUs: quota 2" in static


async def test_compose_shows_the_accounts_quota(make_app, backend, tmp_path) -> None:
    from textual.widgets import Static

    from awsac_tui.session import Quota

    backend.quota = Quota(2, "vCPUs", "Service Quotas L-1216C47A")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _compose(pilot, _job_dir(tmp_path))
        plan = screen.query_one("#plan", Static)
        await wait_for(pilot, lambda: "quota" in str(plan.content))
        assert "needs 4 vCPUs: quota 2" in str(plan.content)  # 2 x c5.large: more than 2
