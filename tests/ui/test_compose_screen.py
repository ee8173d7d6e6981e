"""Pilot tests of the compose screen: job dir, job lines, plan, validation, save, start."""

from __future__ import annotations

import shutil
from pathlib import Path

from awsac_agent.jobscfg import JobLine, read_jobs_cfg
from textual.widgets import Input, Select, Static
from ui_helpers import EVENTGEN, screen_text, wait_for, wait_for_verbs

from awsac_tui import spec as specmod
from awsac_tui.ui.screens.compose import ComposeScreen, JobLineModal
from awsac_tui.ui.screens.modals import ConfirmModal
from awsac_tui.ui.screens.session import SessionScreen
from awsac_tui.ui.screens.sessions import SessionsScreen
from awsac_tui.ui.widgets.keyed_table import KeyedTable

SNAP = "snap-9fd4a2f0"


def _job_dir(tmp_path: Path, with_cfg: bool) -> Path:
    d = tmp_path / "eventgen"
    shutil.copytree(EVENTGEN, d)
    if not with_cfg:
        for name in ("jobs.cfg", "session.toml", "session.ini"):
            (d / name).unlink()
    return d


async def _compose(pilot) -> ComposeScreen:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, SessionsScreen))
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen))
    screen = app.screen
    await wait_for(pilot, lambda: screen.choices.instance_types != ())
    return screen


async def _add_line(pilot, snapshot: str, script: str, count: int) -> None:
    """Add a line through the dialog; its fields are set directly (typing into an Input is
    Textual's to test, and costs a pilot round trip per key)."""
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, JobLineModal))
    for selector, value in (
        ("#snap-input", snapshot),
        ("#script-input", script),
        ("#count-input", str(count)),
    ):
        pilot.app.screen.query_one(selector, Input).value = value
    await pilot.click("#count-input")
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ComposeScreen))


async def test_compose_eventgen_from_scratch_save_and_start(make_app, backend, tmp_path) -> None:
    job_dir = _job_dir(tmp_path, with_cfg=False)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _compose(pilot)
        assert any("job dir" in p for p in screen.problems)
        await pilot.click("#job-dir")
        screen.query_one("#job-dir", Input).value = str(job_dir)  # typing: the test below
        await pilot.press("enter")
        assert "gen_30.sh" in screen.scripts and "gen_1000.sh" in screen.scripts
        screen.query_one("#shortdescr", Input).value = "eventgen"
        assert screen.query_one("#instance-type", Select).value == "c5.large"
        assert screen.query_one("#bucket", Input).value == "atlassessions"
        screen.query_one("#lines").focus()
        await _add_line(pilot, SNAP, "gen_30.sh", 2)
        await _add_line(pilot, SNAP, "gen_1000.sh", 2)
        assert screen.lines == [
            JobLine(SNAP, "gen_30.sh", 2, 0),
            JobLine(SNAP, "gen_1000.sh", 2, 0),
        ]
        await wait_for(pilot, lambda: screen.valid)  # the cloud confirmed image and snapshots
        assert screen.problems == []
        assert "✓ valid" in screen_text(app)
        plan = str(screen.query_one("#plan", Static).content)
        assert "4 jobs → 2 instances\n× 2 cores, 0 unused" in plan
        assert "LI 1: jobs 3 4" in plan
        # ctrl+s writes jobs.cfg + session.toml that read back the same
        await pilot.press("ctrl+s")
        await wait_for_verbs(app)
        assert [(j.snapshot, j.script, j.count) for j in read_jobs_cfg(job_dir / "jobs.cfg")] == [
            (SNAP, "gen_30.sh", 2),
            (SNAP, "gen_1000.sh", 2),
        ]
        spec, lines = specmod.load_session(job_dir / "session.toml")
        assert (spec.shortdescr, spec.instance_type, spec.bucket) == (
            "eventgen",
            "c5.large",
            "atlassessions",
        )
        assert spec.cloud.local  # saved where it runs: `awsac start` on it uses the same cloud
        # ctrl+g: the paper's question, then the session screen
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        question = app.screen.question
        assert "Run exactly 2 instances of type c5.large" in question
        assert "081215_1701--eventgen--5e1f;atlassessions;sessionarchive.tar.bz2;2" in question
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionScreen))
        assert app.screen.session_id == "081215_1701--eventgen--5e1f"
        await wait_for(pilot, lambda: app.screen.refreshes > 0)
        assert app.screen.query_one("#jobs", KeyedTable).row_count == 4
        assert app.screen_stack[-2].id == "sessions"  # compose was replaced


async def test_placeholders_are_not_valid_and_a_pick_replaces_the_snapshot(
    make_app, backend, tmp_path
) -> None:
    """The example's snap-00000000 and ami-00000000 are refused by name and line; picking the
    cloud's snapshot in the line dialog replaces the placeholder; then starting can be declined."""
    job_dir = _job_dir(tmp_path, with_cfg=True)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _compose(pilot)
        screen.open_dir(job_dir)
        await wait_for(pilot, lambda: len(screen.lines) == 2)
        await wait_for(pilot, lambda: screen.refs_checked is not None)
        problems = "\n".join(screen.problems)
        assert "session.toml: image_id 'ami-00000000' does not exist" in problems
        assert "jobs.cfg, line 7: snapshot snap-00000000 does not exist" in problems
        assert "jobs.cfg, line 8: snapshot snap-00000000 does not exist" in problems
        assert "make one with `awsac local snapshot DIR`" in problems
        assert "None" not in problems and "line 0" not in problems
        assert not screen.valid and "✓ valid" not in screen_text(app)
        await pilot.press("ctrl+g")  # refused: nothing is started
        await wait_for_verbs(app)
        assert not any(c[0] == "start" for c in backend.calls)
        screen.query_one("#image", Select).value = "ami-0abc1234"
        table = screen.query_one("#lines", KeyedTable)
        for row in (0, 1):
            table.focus()
            table.move_cursor(row=row)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, JobLineModal))
            modal = app.screen
            assert modal.query_one("#snap-input", Input).value == "snap-00000000"
            modal.query_one("#snap-select", Select).value = SNAP  # the pick
            await pilot.pause()
            assert modal.query_one("#snap-input", Input).value == SNAP  # replaced it
            await pilot.click("#ok")
            await wait_for(pilot, lambda: app.screen is screen)
        assert [jl.snapshot for jl in screen.lines] == [SNAP, SNAP]
        await wait_for(pilot, lambda: screen.valid)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("n")
        await wait_for_verbs(app)
        await pilot.pause()
        assert app.screen is screen
        assert backend.start_session_id not in [c.session_id for c in await backend.list_sessions()]
        # the save before the start kept the user's comments
        text = (job_dir / "jobs.cfg").read_text()
        assert "# The paper's example session" in text and f"{SNAP};gen_30.sh;2" in text
        assert "# c5.large has 2 vCPUs" in (job_dir / "session.toml").read_text()


async def test_open_existing_session_and_validation_inline(make_app, tmp_path) -> None:
    job_dir = _job_dir(tmp_path, with_cfg=True)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _compose(pilot)
        screen.open_dir(job_dir)
        await wait_for(pilot, lambda: screen.lines != [])
        assert screen.query_one("#shortdescr", Input).value == "eventgen"
        # the spec's image is not among the account's: still offered, and selected
        assert screen.query_one("#image", Select).value == "ami-00000000"
        await pilot.click("#shortdescr")
        await pilot.press("end", "backspace", *"!")
        assert any("short description" in p for p in screen.problems)
        assert "✗" in screen_text(app)
        await pilot.press("ctrl+s")  # refused while invalid
        assert any("cannot save" in n.message for n in app._notifications)
        await pilot.press("backspace", "backspace", *"n")
        assert not any("short description" in p for p in screen.problems)


async def test_delete_and_edit_lines(make_app, tmp_path) -> None:
    job_dir = _job_dir(tmp_path, with_cfg=True)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _compose(pilot)
        screen.open_dir(job_dir)
        await wait_for(pilot, lambda: screen.lines != [])
        table = screen.query_one("#lines", KeyedTable)
        table.focus()
        await pilot.press("d")
        assert [line.script for line in screen.lines] == ["gen_1000.sh"]
        assert table.row_count == 1
        await pilot.press("enter")  # edit the line
        await wait_for(pilot, lambda: isinstance(app.screen, JobLineModal))
        await pilot.click("#count-input")
        await pilot.press("end", "backspace", "5", "enter")
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.lines[0].count == 5
        assert "LI 2: jobs 5" in str(screen.query_one("#plan", Static).content)


async def test_bad_line_is_refused_in_the_dialog(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _compose(pilot)
        screen.query_one("#lines").focus()
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, JobLineModal))
        modal = app.screen
        await wait_for(pilot, lambda: bool(modal.query("#snap-input")))
        modal.query_one("#snap-input", Input).value = "snap-xyz"
        modal.query_one("#script-input", Input).value = "../evil.sh"
        modal.query_one("#script-input", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: str(modal.query_one("#line-problems").render()) != "")
        assert app.screen is modal
        problems = str(modal.query_one("#line-problems").render())
        assert "not a snapshot id" in problems and "outside the session archive" in problems
        await pilot.press("escape")
        assert app.screen is screen and screen.lines == []


async def test_typing_right_away_goes_to_the_job_dir(make_app, tmp_path, monkeypatch) -> None:
    """After ``n`` the job dir has the focus: a typed path is not taken for the a/d line keys."""
    job_dir = _job_dir(tmp_path, with_cfg=True).rename(tmp_path / "data")  # an 'a' and a 'd'
    (job_dir / "jobs.cfg").write_text(f"{SNAP};gen_30.sh;2\n{SNAP};gen_1000.sh;2\n")
    monkeypatch.chdir(tmp_path)  # a short relative path: four keys, not one per /tmp/... letter
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _compose(pilot)
        await pilot.press(*"data", "enter")
        assert isinstance(app.screen, ComposeScreen)  # no line dialog opened by the 'a' or 'd'
        await wait_for(pilot, lambda: len(screen.lines) == 2)
        assert screen.job_dir == Path("data")


async def test_lines_get_the_snapshot_descriptions_when_the_choices_arrive(
    make_app, tmp_path
) -> None:
    job_dir = _job_dir(tmp_path, with_cfg=True)
    (job_dir / "jobs.cfg").write_text(f"{SNAP};gen_30.sh;2\n{SNAP};gen_1000.sh;2\n")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SessionsScreen))
        screen = ComposeScreen(job_dir)  # loads the lines before the account's lists come
        await app.push_screen(screen)
        table = screen.query_one("#lines", KeyedTable)
        await wait_for(pilot, lambda: app.focused is table)
        await wait_for(pilot, lambda: screen.choices.snapshots != ())
        await wait_for(pilot, lambda: table.row_cells("line0") is not None)
        assert "ATLAS 14.2.10" in str(table.row_cells("line0")[4])
