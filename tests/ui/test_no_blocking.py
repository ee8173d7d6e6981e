"""Nothing blocks Textual's event loop (issue 15): the blocking-call trap of
``tests/client/test_hygiene.py`` (Monitor.refresh), extended to every screen's mount, refresh
and main actions, on the real LiveBackend and the local cloud.

The trap: synchronous HTTP (urllib3, urllib, http.client), directory walks, file reads and
writes and sleeps fail the test when awsac code calls them on the event loop's thread (thread
workers and ``asyncio.to_thread`` may); and asyncio's debug mode reports any callback that held
the loop for longer than a blocking call takes (the 3 s health call of issue 15).
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import pathlib
import shutil
import threading
import time
import tomllib
import traceback
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Select
from ui_helpers import EVENTGEN, wait_for, wait_for_verbs

from awsac_tui import records
from awsac_tui.spec import CloudProfile
from awsac_tui.ui.app import AwsacApp
from awsac_tui.ui.live import LiveBackend
from awsac_tui.ui.screens.compose import ComposeScreen, JobLineModal
from awsac_tui.ui.screens.detail import JobDetailScreen
from awsac_tui.ui.screens.log import LogScreen
from awsac_tui.ui.screens.modals import ConfirmModal, MessageModal
from awsac_tui.ui.screens.session import SessionScreen
from awsac_tui.ui.widgets.keyed_table import KeyedTable

pytestmark = pytest.mark.slow

SLOW_CALLBACK = 2.0  # generous on a loaded 2-core machine; the health call blocked for 3.0 s
ROOT = Path(__file__).resolve().parents[2]
OURS = str(ROOT / "awsac_tui")
EXEMPT = (str(ROOT / "awsac_tui" / "testing"), str(ROOT / "awsac_tui" / "local"))


def _awsac_frame() -> str | None:
    """The innermost awsac frame of the caller's stack, when there is one."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        if frame.filename.startswith(OURS) and not frame.filename.startswith(EXEMPT):
            return f"{Path(frame.filename).relative_to(ROOT)}:{frame.lineno} {frame.name}"
    return None


class Trap(list):
    """The blocking calls caught (while ``armed``)."""

    armed = True


@pytest.fixture
def trap(monkeypatch) -> Trap:
    """Wrap blocking calls: those made by awsac code on the loop's (main) thread are recorded."""
    caught = Trap()
    main = threading.main_thread()

    def wrap(owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def trapped(*args, **kwargs):
            if caught.armed and threading.current_thread() is main:
                where = _awsac_frame()
                if where is not None:
                    caught.append(f"{owner.__name__}.{name} from {where}")
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, trapped)

    import urllib3.connectionpool

    wrap(urllib3.connectionpool.HTTPConnectionPool, "urlopen")
    wrap(urllib.request, "urlopen")
    wrap(http.client.HTTPConnection, "connect")
    for name in (
        "rglob",
        "glob",
        "iterdir",
        "read_text",
        "read_bytes",
        "write_text",
        "write_bytes",
    ):
        wrap(pathlib.Path, name)
    wrap(tomllib, "loads")
    wrap(time, "sleep")
    wrap(shutil, "copyfileobj")
    return caught


async def test_no_screen_blocks_the_event_loop(
    local_cloud: Any, release_snapshot: str, boto3_client, tmp_path: Path, trap: Trap, caplog
) -> None:
    trap.armed = False  # the test's own setup may block
    backend = LiveBackend()  # the default profile: found (a health call) in a worker
    record = records.save_record(
        records.SessionRecord(
            session_id="260101_1200--noblock--0000",
            state="running",
            bucket="awsac-noblock",
            n_jobs=2,
            n_instances=1,
            cores_per_instance=2,
            status_store="s3",
            jobs=("-;job.sh;2",),
            cloud=CloudProfile(local=True),
        )
    )
    boto3_client("s3").create_bucket(Bucket=record.bucket)
    job_dir = tmp_path / "eventgen"
    shutil.copytree(EVENTGEN, job_dir, ignore=shutil.ignore_patterns("release"))
    loop = asyncio.get_running_loop()
    trap.armed = True
    app = AwsacApp(backend, results_dir=tmp_path, interval_scale=0.2)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        async with app.run_test(size=(80, 24)) as pilot:
            # sessions: mount, the cloud probe, a refresh
            await wait_for(pilot, lambda: app.screen.id == "sessions", timeout=30)
            home = app.screen
            await wait_for(pilot, lambda: home.refreshes > 0, timeout=60)
            assert backend.cloud_description() == "local"
            loop.set_debug(True)
            loop.slow_callback_duration = SLOW_CALLBACK
            await wait_for(pilot, lambda: home.refreshes > 1, timeout=60)

            # session: mount, refresh, detail, log (save), results, cleanup
            table = home.query_one(KeyedTable)
            table.move_cursor(row=table.get_row_index(record.session_id))
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, SessionScreen), timeout=30)
            screen = app.screen
            await wait_for(pilot, lambda: screen.refreshes > 1, timeout=60)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen))
            await wait_for(pilot, lambda: app.screen.log_lines is not None, timeout=30)
            await pilot.press("escape", "l")
            await wait_for(pilot, lambda: isinstance(app.screen, LogScreen))
            log = app.screen
            await wait_for(pilot, lambda: log.refreshes > 0, timeout=30)
            await pilot.press("ctrl+s")
            await wait_for_verbs(app)
            await pilot.press("escape", "r")
            await wait_for_verbs(app)
            await pilot.press("x")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
            await pilot.press("y")
            await wait_for(pilot, lambda: isinstance(app.screen, MessageModal), timeout=60)
            await pilot.press("escape", "escape")

            # compose: mount (the account's lists), open a dir, a line, the cloud check, save,
            # and a start up to the paper's question
            await wait_for(pilot, lambda: app.screen is home)
            await pilot.press("n")
            await wait_for(pilot, lambda: isinstance(app.screen, ComposeScreen))
            compose = app.screen
            await wait_for(pilot, lambda: compose.choices.instance_types != (), timeout=60)
            compose.query_one("#job-dir", Input).value = str(job_dir)
            await pilot.press("enter")
            await wait_for(pilot, lambda: len(compose.lines) == 2, timeout=30)
            compose.query_one("#image", Select).value = local_cloud.image_id
            compose.lines = []
            compose.show_lines()
            await pilot.press("ctrl+l", "a")
            await wait_for(pilot, lambda: isinstance(app.screen, JobLineModal))
            app.screen.query_one("#snap-select", Select).value = release_snapshot
            app.screen.query_one("#script-input", Input).value = "gen_30.sh"
            await pilot.click("#ok")
            await wait_for(pilot, lambda: app.screen is compose)
            await wait_for(pilot, lambda: compose.valid, timeout=60)
            await pilot.press("ctrl+s")
            await wait_for_verbs(app)
            await pilot.press("ctrl+g")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), timeout=60)
            await pilot.press("n")
            await wait_for_verbs(app)
            loop.set_debug(False)
    # Textual's own tasks (its render timer, the message pumps that run our handlers) are left to
    # the trap above: on a loaded 2-core machine a render can take seconds without any blocking
    slow = [
        r.getMessage()
        for r in caplog.records
        if "took" in r.getMessage() and "site-packages/textual/" not in r.getMessage()
    ]
    assert not trap, "blocking calls on the event loop:\n" + "\n".join(trap)
    assert not slow, f"callbacks that held the event loop: {slow}"
    assert (tmp_path / f"{record.session_id}_job_1.log").exists()  # the log was saved
    assert local_cloud.image_id in (job_dir / "session.toml").read_text()


def test_the_trap_catches_a_blocking_call_on_the_loop(trap: Trap) -> None:
    """The trap itself: a walk made by awsac code on the main thread is caught."""
    from awsac_tui.ui.screens.compose import list_scripts

    list_scripts(EVENTGEN)
    assert any("rglob" in t and "compose.py" in t for t in trap), trap
