"""Job status: vocabulary and its order, counts, record round trips, SimpleDB select quoting."""

from __future__ import annotations

import json
from datetime import UTC

import pytest
from awsac_agent import status as st
from awsac_agent.status import JobRecord

SID = "081013_1405--eventgen--a1b2"


def test_terminal_flags_and_one_status_order() -> None:
    assert st.TERMINAL == {st.FINISHED, st.FAILED, st.KILLED, st.LOST}
    assert st.ACTIVE == {st.RUNNING, st.WAITFORSAVE, st.SAVING}
    assert JobRecord(1, status=st.FINISHED).terminal
    assert not JobRecord(1, status=st.SAVING).terminal
    # every status once; finished first, then back along the path, then the other ends
    assert sorted(st.STATUSES) == sorted(set(st.STATUSES)) and len(st.STATUSES) == 8
    assert st.STATUSES[:5] == (st.FINISHED, st.SAVING, st.WAITFORSAVE, st.RUNNING, st.PENDING)


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
    assert st.count_statuses(r.status for r in recs) == [(st.RUNNING, 2), (st.PENDING, 1)]
    assert st.count_statuses(["lost", "weird", st.FINISHED, "lost"]) == [
        (st.FINISHED, 1),
        (st.LOST, 2),
        ("weird", 1),  # outside the vocabulary: last
    ]
    assert st.count_statuses([]) == []


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


def test_select_kill_requests() -> None:
    assert st.select_kill_requests(SID, [1, 2]) == (
        f"select `kill` from `{SID}` where `kill` = 'requested' and itemName() in ('job1', 'job2')"
    )
    with pytest.raises(ValueError, match="1 to 20 job numbers, got 0"):
        st.select_kill_requests(SID, [])
    with pytest.raises(ValueError, match="got 21"):
        st.select_kill_requests(SID, list(range(1, 22)))


def test_retryable_statuses() -> None:
    assert st.RETRYABLE == {st.LOST, st.FAILED}


def test_attempt_and_updated_round_trip() -> None:
    rec = FULL.with_(attempt=3, updated="2008-10-13T14:25:09.120Z")
    attrs = rec.to_attributes()
    assert attrs["attempt"] == "3" and attrs["updated"] == "2008-10-13T14:25:09.120Z"
    assert JobRecord.from_attributes(attrs) == rec
    assert JobRecord.from_json(rec.to_json()) == rec
    # records of the paper (no attempt) are attempt 1; nonsense reads as 1 too
    assert JobRecord.from_attributes({"jobnr": "1"}).attempt == 1
    assert JobRecord.from_attributes({"jobnr": "1", "attempt": "x"}).attempt == 1
    assert JobRecord.from_json('{"jobnr": 1, "attempt": 0}').attempt == 1


def test_updated_stamps_sort_as_strings_by_time() -> None:
    from datetime import datetime, timedelta

    t0 = datetime(2026, 5, 9, 12, 0, 0, tzinfo=UTC)
    stamps = [st.updated_iso(t0 + timedelta(milliseconds=ms)) for ms in (0, 5, 500, 1000, 61000)]
    assert stamps[0] == "2026-05-09T12:00:00.000Z"
    assert len({len(s) for s in stamps}) == 1
    assert stamps == sorted(stamps)
    assert st.parse_iso(stamps[2]) == t0 + timedelta(milliseconds=500)
    assert st.hhmmss("2026-05-09T12:04:31Z") == "12:04:31Z"


def test_requeued_keeps_identity_and_history() -> None:
    lost = JobRecord(
        7,
        st.LOST,
        instance_id="i-1",
        launchindex=0,
        shellscript="a.sh",
        snapshot="snap-1",
        runstarttime="2026-05-09T12:00:00Z",
        runendtime="2026-05-09T12:01:00Z",
        error=st.cause_spot_notice("2026-05-09T12:01:00Z", "i-1"),
        kill="requested",
        attempt=1,
    )
    again = st.requeued(lost)
    assert (again.jobnr, again.status, again.attempt) == (7, st.PENDING, 2)
    assert (again.shellscript, again.snapshot) == ("a.sh", "snap-1")
    assert again.instance_id is None and again.error is None and again.kill is None
    assert again.updated is not None
    assert st.history_of(again) == [
        {
            "attempt": 1,
            "status": "lost",
            "instance_id": "i-1",
            "runstarttime": "2026-05-09T12:00:00Z",
            "runendtime": "2026-05-09T12:01:00Z",
            "error": "spot interruption notice at 12:01:00Z for instance i-1",
        }
    ]
    third = st.requeued(again.with_(status=st.LOST, instance_id="i-2", error="second cause"))
    assert [h["error"] for h in st.history_of(third)] == [lost.error, "second cause"]
    assert third.attempt == 3
    stale = st.stale_attributes(lost, again)
    assert {"instance_id", "error", "kill", "runstarttime", "launchindex"} <= set(stale)
    assert stale["kill"] == "requested" and stale["instance_id"] == "i-1"
    assert "shellscript" not in stale and "attempt" not in stale


def test_history_fits_a_simpledb_value() -> None:
    rec = JobRecord(1, st.LOST, error="x" * 900)
    for _ in range(12):
        rec = st.requeued(rec).with_(status=st.LOST, error="y" * 900)
    assert len(rec.history.encode()) <= st.MAX_HISTORY_BYTES
    hist = st.history_of(rec)
    assert hist[-1]["attempt"] == 12 and hist[-1]["error"].endswith("...")


def test_may_retry() -> None:
    assert st.may_retry(JobRecord(1, st.LOST, attempt=1), 2)
    assert not st.may_retry(JobRecord(1, st.LOST, attempt=2), 2)
    assert not st.may_retry(JobRecord(1, st.FAILED, attempt=1), 3)
    assert st.may_retry(JobRecord(1, st.FAILED, attempt=1), 3, retry_failed=True)
    assert not st.may_retry(JobRecord(1, st.FINISHED), 3, retry_failed=True)


def test_causes_in_user_words() -> None:
    assert st.cause_terminated("i-9") == "instance i-9 terminated from outside while the job ran"
    assert st.cause_terminated("i-9", "Client.UserInitiatedShutdown").endswith(
        "(state reason: Client.UserInitiatedShutdown)"
    )
    assert st.cause_spot_notice("2026-05-09T12:04:31Z") == "spot interruption notice at 12:04:31Z"
    assert st.cause_silent(120, "i-9") == "agent silent for 120 s on a running instance (i-9)"


def test_heartbeat_round_trip_and_silence() -> None:
    hb = st.Heartbeat("i-1", 0, "2026-05-09T12:00:00.000Z", 30.0, st.HB_RUNNING, (3, 4), 7)
    back = st.Heartbeat.from_json(hb.to_json())
    assert back == hb
    assert json.loads(hb.to_json())["jobs"] == [3, 4]
    assert hb.silent_after() == 120.0 == st.silent_after()


def test_control_poll_grows_with_the_session() -> None:
    assert st.control_poll_seconds(1) == st.CONTROL_BASE_SECONDS
    assert st.control_poll_seconds(100) == 5.0
    assert st.control_poll_seconds(1000) == 50.0
    assert st.control_poll_seconds(1000, base=0.5) == 50.0
    assert st.control_poll_seconds(4, base=0.5) == 0.5


def test_claim_and_queue_selects() -> None:
    assert st.claim_expected() == {"Name": "status", "Value": "pending", "Exists": True}
    assert st.select_pending(SID, 50) == (
        f"select `attempt` from `{SID}` where `status` = 'pending' limit 50"
    )
    assert st.select_updated_since(SID, "2026-05-09T12:00:00.000Z") == (
        f"select * from `{SID}` where `updated` >= '2026-05-09T12:00:00.000Z' limit 2500"
    )
    assert st.watch_body().endswith("Z\n")
