"""Pure parts of the TUI: log tail diffing, timeline lanes, status bars, plan text, hygiene."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from awsac_tui.testing.fixed_backend import FixedBackend, big_snapshot
from awsac_tui.ui.screens.compose import describe_plan, list_scripts
from awsac_tui.ui.screens.log import new_lines
from awsac_tui.ui.screens.sessions import format_age
from awsac_tui.ui.widgets.status import status_bar
from awsac_tui.ui.widgets.timeline import build_lanes

UI = Path(__file__).resolve().parents[2] / "awsac_tui" / "ui"


def test_new_lines_appends_growth_and_follows_a_rolling_tail() -> None:
    assert new_lines([], ["a", "b"]) == (True, ["a", "b"])
    assert new_lines(["a", "b"], ["a", "b", "c"]) == (True, ["c"])
    # the tail window moved: the old last lines are found further up
    assert new_lines(["a", "b", "c", "d"], ["c", "d", "e"]) == (True, ["e"])
    # nothing in common: replace the view
    assert new_lines(["a", "b"], ["x", "y"]) == (False, ["x", "y"])


def test_timeline_lanes_pack_sequential_jobs_and_split_overlapping_ones() -> None:
    snap = FixedBackend.demo().snapshots["081215_1646--eventgen--1816"]
    lanes, t0 = build_lanes(snap)
    assert t0 is not None
    # LI 0 runs jobs 1 and 2 at the same time (2 cores): two lanes; LI 1 likewise
    assert [lane.label for lane in lanes] == ["LI 0", "", "LI 1", ""]
    assert sorted(b.jobnr for lane in lanes for b in lane.bars) == [1, 2, 3, 4]
    running = [b for lane in lanes for b in lane.bars if b.status == "running"]
    assert all(b.end is None for b in running)


def test_timeline_flags_silent_and_gone_instances() -> None:
    snap = FixedBackend.demo().snapshots["081215_1650--mixed--a3f0"]
    lanes, _ = build_lanes(snap)
    flags = {lane.label: lane.flag for lane in lanes if lane.label}
    assert flags == {"LI 0": "", "LI 1": "gone", "LI 2": "silent"}


def test_status_bar_has_exact_width_and_every_status_visible() -> None:
    counts = [("finished", 997), ("failed", 1), ("running", 1), ("lost", 1)]
    for width in (8, 13, 40):
        bar = status_bar(counts, width)
        assert bar.cell_len == width
    assert "█" in status_bar([("failed", 1), ("finished", 999)], 8).plain


def test_describe_plan_uses_the_assignment_rule() -> None:
    text = describe_plan(5, 2, 0.1).plain
    assert "5 jobs → 3 instances\n× 2 cores, 1 unused" in text
    assert "LI 0: jobs 1 2" in text and "LI 2: jobs 5" in text
    assert "~$0.30/h" in text
    assert "LI 8.." in describe_plan(100, 1, None).plain  # long plans are cut


def test_list_scripts_puts_shell_scripts_first(tmp_path: Path) -> None:
    (tmp_path / "b.sh").write_text("")
    (tmp_path / "a.cfg").write_text("")
    (tmp_path / "jobs.cfg").write_text("")
    (tmp_path / ".hidden").write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.sh").write_text("")
    assert list_scripts(tmp_path) == ["b.sh", "sub/c.sh", "a.cfg"]


def test_format_age() -> None:
    snap = big_snapshot()
    now = snap.taken_at
    from datetime import timedelta

    assert format_age(now - timedelta(seconds=5), now) == "5s"
    assert format_age(now - timedelta(minutes=12), now) == "12m"
    assert format_age(now - timedelta(hours=3, minutes=5), now) == "3h05"


def test_ui_never_imports_an_aws_client() -> None:
    """The UI layer talks to session.py/monitor.py through the Backend, never to boto."""
    offenders = []
    for path in UI.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in ("boto3", "botocore", "aiobotocore"):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_instance_hours_stop_growing_once_instances_are_gone() -> None:
    from dataclasses import replace
    from datetime import timedelta

    from awsac_tui.ui.backend import instance_hours

    snap = FixedBackend.demo().snapshots["081215_1646--eventgen--1816"]
    now = snap.taken_at
    alive = instance_hours(snap, now)
    assert instance_hours(snap, now + timedelta(hours=1)) == pytest.approx(alive + 2.0)  # two up
    gone = replace(snap, instances=tuple(replace(i, state="terminated") for i in snap.instances))
    # up to the last job end on each instance, independent of "now"
    assert instance_hours(gone, now) == instance_hours(gone, now + timedelta(days=1)) > 0


def test_fixed_columns_fit_every_status_and_state() -> None:
    """Cells change in place without resizing, so fixed widths must fit the longest value."""
    from awsac_agent.status import STATUSES

    from awsac_tui.ui.screens.session import INSTANCE_COLUMNS, JOB_COLUMNS, VOLUME_COLUMNS

    width = {key: w for key, _, w in JOB_COLUMNS}
    assert max(len(s) for s in STATUSES) <= width["status"]
    assert len("i-0123456789abcdef0") <= width["instance"]
    inst = {key: w for key, _, w in INSTANCE_COLUMNS}
    assert len("shutting-down") <= inst["state"]
    vol = {key: w for key, _, w in VOLUME_COLUMNS}
    assert len("available") <= vol["state"] and len("vol-0123456789abcdef0") <= vol["id"]


def test_refresh_scale_from_env(monkeypatch) -> None:
    from awsac_agent.errors import AwsacError

    from awsac_tui.ui.app import refresh_scale_from_env

    monkeypatch.delenv("AWSAC_REFRESH_SCALE", raising=False)
    assert refresh_scale_from_env() == 1.0
    monkeypatch.setenv("AWSAC_REFRESH_SCALE", "2.5")
    assert refresh_scale_from_env() == 2.5
    for bad in ("fast", "0"):
        monkeypatch.setenv("AWSAC_REFRESH_SCALE", bad)
        with pytest.raises(AwsacError, match="AWSAC_REFRESH_SCALE"):
            refresh_scale_from_env()


def test_volume_kind_tells_root_disks_from_job_volumes() -> None:
    from awsac_tui.ui.screens.session import volume_kind, volume_order
    from awsac_tui.views import VolumeView

    ours = {"snap-9fd4a2f0"}
    job = VolumeView("vol-1", "snap-9fd4a2f0", "in-use", "i-1", "/dev/sdh", 8)
    root = VolumeView("vol-2", "snap-0a7e11c2", "in-use", "i-1", "/dev/sda1", 8)
    root_no_snap = VolumeView("vol-3", None, "in-use", "i-1", "/dev/xvda", 8)
    assert volume_kind(job, ours) == "job"
    assert volume_kind(root, ours) == "root" and volume_kind(root_no_snap, ours) == "root"
    # a root disk is a root disk even when its image was made from one of our snapshots
    assert volume_kind(
        VolumeView("vol-4", "snap-9fd4a2f0", "in-use", "i-1", "/dev/xvda"), ours
    ) == ("root")
    rows = [("LI 10", "job"), ("LI 2", "job"), ("LI 2", "root"), ("", "job")]
    assert sorted(rows, key=volume_order) == [
        ("LI 2", "root"),
        ("LI 2", "job"),
        ("LI 10", "job"),
        ("", "job"),
    ]
