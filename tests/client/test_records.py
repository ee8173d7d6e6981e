"""Session records: TOML in the state dir (0600), lookup by id/prefix/path, the paper's cfg."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from awsac_agent.errors import FormatError

from awsac_tui import paths, records
from awsac_tui.records import SessionRecord
from awsac_tui.spec import CloudProfile


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AWSAC_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def rec(sid: str = "081215_1646--eventgen--1816", **kw) -> SessionRecord:
    base = dict(
        session_id=sid,
        state="running",
        shortdescr="eventgen",
        bucket="atlassessions",
        instance_type="c1.medium",
        image_id="ami-c97591a0",
        image_owner="201521871620",
        n_jobs=4,
        n_instances=2,
        cores_per_instance=2,
        runuserdata=f"{sid};atlassessions;sessionarchive.tar.bz2;2",
        reservation_id="r-bc0da0d5",
        cloud=CloudProfile(profile="work", region="eu-west-1"),
        jobs=("snap-9fd433f6;gen_30.sh;2", "snap-9fd433f6;gen_1000.sh;2"),
    )
    base.update(kw)
    return SessionRecord(**base)


def test_concurrent_saves_of_one_record_never_clash(state: Path) -> None:
    """The client saves records from worker threads (asyncio.to_thread): writers must not share
    a temporary file, and no temporary file stays behind."""
    from concurrent.futures import ThreadPoolExecutor

    states = ["running", "ended"] * 40
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda s: records.save_record(rec(state=s)), states))
    assert records.load_record("081215_1646--eventgen--1816").state in ("running", "ended")
    assert [p.name for p in (state / "sessions").iterdir()] == ["081215_1646--eventgen--1816.toml"]


def test_state_dir_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AWSAC_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert paths.state_dir() == tmp_path / "xdg" / "awsac"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.state_dir() == tmp_path / "home" / ".local" / "state" / "awsac"


def test_save_is_0600_and_round_trips(state: Path) -> None:
    saved = records.save_record(rec())
    assert saved.path == state / "sessions" / "081215_1646--eventgen--1816.toml"
    assert stat.S_IMODE(saved.path.stat().st_mode) == 0o600
    back = records.load_record("081215_1646--eventgen--1816")
    assert back == saved
    assert back.cloud == CloudProfile(profile="work", region="eu-west-1")


def test_lookup_by_prefix_suffix_and_path(state: Path) -> None:
    records.save_record(rec())
    records.save_record(rec("081215_1700--eventgen--aaaa"))
    assert records.load_record("081215_1646").session_id == "081215_1646--eventgen--1816"
    assert records.load_record("aaaa").session_id == "081215_1700--eventgen--aaaa"
    path = state / "sessions" / "081215_1700--eventgen--aaaa.toml"
    assert records.load_record(str(path)).session_id == "081215_1700--eventgen--aaaa"
    with pytest.raises(FormatError, match="matches 2 sessions"):
        records.load_record("081215")
    with pytest.raises(FormatError, match="no session matches"):
        records.load_record("nothing")


def test_paper_cfg_has_the_paper_keys_and_reads_back(tmp_path: Path) -> None:
    r = rec(cloud=CloudProfile(local=True))
    path = records.write_paper_cfg(r, tmp_path)
    assert path.name == "session-081215_1646--eventgen--1816.cfg"
    text = path.read_text()
    assert text.startswith("[sessionconfig]\n")
    for key in records.PAPER_KEYS:
        assert f"\n{key} = " in text
    assert (
        "runuserdata = 081215_1646--eventgen--1816;atlassessions;sessionarchive.tar.bz2;2" in text
    )
    back = records.load_record(str(path))  # no stored record: built from the cfg alone
    assert (back.session_id, back.reservation_id, back.n_instances) == (
        r.session_id,
        "r-bc0da0d5",
        2,
    )
    assert back.cloud.local and back.image_owner == "201521871620"


def test_paper_cfg_written_by_the_2008_client_is_accepted(tmp_path: Path) -> None:
    cfg = tmp_path / "session-081215_1646--eventgen--1816.cfg"
    cfg.write_text(
        "[sessionconfig]\nn_jobs = 4\ncores_per_instance = 2\nshortdescr = eventgen\n"
        "bucket = atlassessions\nsession_id = 081215_1646--eventgen--1816\n"
        "ec2_reservation_id = r-bc0da0d5\ninstance_type = c1.medium\nunused_cores = 0\n"
        "n_instances = 2\nec2_uid = 201521871620\nami_id = ami-c97591a0\n"
        "runuserdata = 081215_1646--eventgen--1816;atlassessions;sessionarchive.tar.bz2;2\n"
    )
    r = records.load_record(str(cfg))
    assert (
        r.bucket == "atlassessions" and r.n_jobs == 4 and r.archive_name == "sessionarchive.tar.bz2"
    )
    assert not r.cloud.local


def test_list_records_newest_first(state: Path) -> None:
    records.save_record(rec("081215_1646--eventgen--1816", created_at="2008-12-15T16:46:00Z"))
    records.save_record(rec("081216_1646--eventgen--1817", created_at="2008-12-16T16:46:00Z"))
    assert [r.session_id for r in records.list_records()] == [
        "081216_1646--eventgen--1817",
        "081215_1646--eventgen--1816",
    ]
