"""Job status: vocabulary, transitions, record round trips, SimpleDB select quoting."""

from __future__ import annotations

import json

import pytest
from awsac_agent import status as st
from awsac_agent.status import JobRecord

SID = "081013_1405--eventgen--a1b2"


def test_happy_path_transitions() -> None:
    path = [None, st.PENDING, st.RUNNING, st.WAITFORSAVE, st.SAVING, st.FINISHED]
    for old, new in zip(path, path[1:], strict=False):
        assert st.can_transition(old, new), (old, new)


@pytest.mark.parametrize("live", [st.PENDING, st.RUNNING, st.WAITFORSAVE, st.SAVING])
def test_failed_killed_lost_from_any_live_state(live: str) -> None:
    for end in (st.FAILED, st.KILLED, st.LOST):
        assert st.can_transition(live, end)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (None, st.RUNNING),  # a record starts as pending (or failed)
        (st.PENDING, st.FINISHED),  # no skipping the save
        (st.RUNNING, st.SAVING),
        (st.RUNNING, st.PENDING),  # no going back
        (st.FINISHED, st.RUNNING),
        (st.FAILED, st.PENDING),
        (st.KILLED, st.FINISHED),
        (st.LOST, st.RUNNING),
        (st.RUNNING, "done"),  # not in the vocabulary
    ],
)
def test_forbidden_transitions(old: str | None, new: str) -> None:
    assert not st.can_transition(old, new)


def test_same_state_is_allowed_and_terminal_flags() -> None:
    assert st.can_transition(st.RUNNING, st.RUNNING)
    assert st.TERMINAL == {st.FINISHED, st.FAILED, st.KILLED, st.LOST}
    assert JobRecord(1, status=st.FINISHED).terminal
    assert not JobRecord(1, status=st.SAVING).terminal
    assert set(st.TRANSITIONS) == set(st.STATUSES)


FULL = JobRecord(
    jobnr=3,
    status=st.FINISHED,
    instance_id="i-33f64f5a",
    launchindex=1,
    shellscript="gen_1000.sh",
    snapshot="snap-9fd433f6",
    runstarttime="2008-10-13T14:05:00Z",
    runendtime="2008-10-13T14:25:00Z",
    returncode=0,
    savestarttime="2008-10-13T14:25:01Z",
    saveendtime="2008-10-13T14:25:09Z",
)


def test_attributes_round_trip() -> None:
    attrs = FULL.to_attributes()
    assert all(isinstance(v, str) for v in attrs.values())
    assert attrs["jobnr"] == "3" and attrs["launchindex"] == "1" and attrs["returncode"] == "0"
    assert "error" not in attrs  # None values are left out
    assert JobRecord.from_attributes(attrs) == FULL
    as_list = [{"Name": k, "Value": v} for k, v in attrs.items()]
    assert JobRecord.from_attributes(as_list) == FULL


def test_attributes_job_number_from_item_and_unknown_attributes() -> None:
    rec = JobRecord.from_attributes({"status": "running", "extra": "x"}, item="job7")
    assert rec == JobRecord(7, status=st.RUNNING)
    rec = JobRecord.from_attributes({"jobnr": "2", "returncode": "", "launchindex": "x"})
    assert rec.returncode is None and rec.launchindex is None
    with pytest.raises(ValueError, match="status record 'other' has no job number"):
        JobRecord.from_attributes({"status": "running"}, item="other")


def test_json_round_trip() -> None:
    text = FULL.to_json()
    assert json.loads(text)["shellscript"] == "gen_1000.sh"
    assert JobRecord.from_json(text) == FULL
    failed = JobRecord(4, status=st.FAILED, error="volume snap-1 did not attach", kill="requested")
    assert JobRecord.from_json(failed.to_json()) == failed
    assert JobRecord.from_json('{"jobnr": 5, "future_field": 1}') == JobRecord(5)


def test_item_names_and_counts() -> None:
    assert st.item_name(12) == "job12"
    assert st.jobnr_from_item("job12") == 12
    assert st.jobnr_from_item("jobx") is None
    assert st.jobnr_from_item("12") is None
    recs = [
        JobRecord(1, status=st.RUNNING),
        JobRecord(2, status=st.PENDING),
        JobRecord(3, status=st.RUNNING),
    ]
    assert st.counts(recs) == {st.PENDING: 1, st.RUNNING: 2}
    assert list(st.counts(recs)) == [st.PENDING, st.RUNNING]


def test_iso_times() -> None:
    now = st.utcnow_iso()
    assert now.endswith("Z") and st.parse_iso(now) is not None
    parsed = st.parse_iso("2008-10-13T14:05:00+00:00")
    assert parsed is not None and parsed.isoformat() == "2008-10-13T14:05:00+00:00"
    assert st.parse_iso("2008-10-13T14:05:00").tzinfo is not None
    assert st.parse_iso("yesterday") is None
    assert st.parse_iso(None) is None


def test_select_quoting() -> None:
    assert st.quote_value("it's") == "'it''s'"
    assert st.quote_value("''") == "''''''"
    assert st.quote_name("a`b") == "`a``b`"
    assert st.quote_name("weird name") == "`weird name`"
    assert st.select_all_jobs(SID) == f"select * from `{SID}` limit 2500"
    assert (
        st.select_jobs_where(SID, "shell`script", "gen_'30'.sh")
        == f"select * from `{SID}` where `shell``script` = 'gen_''30''.sh'"
    )


def test_select_kill_requests() -> None:
    assert st.select_kill_requests(SID, [1, 2]) == (
        f"select `kill` from `{SID}` where `kill` = 'requested' and itemName() in ('job1', 'job2')"
    )
    with pytest.raises(ValueError, match="1 to 20 job numbers, got 0"):
        st.select_kill_requests(SID, [])
    with pytest.raises(ValueError, match="got 21"):
        st.select_kill_requests(SID, list(range(1, 22)))
