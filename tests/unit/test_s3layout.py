"""The S3 key layout of a session, and classifying keys back."""

from __future__ import annotations

import pytest
from awsac_agent import s3layout as s3

SID = "081013_1405--eventgen--a1b2"


def test_keys() -> None:
    assert s3.prefix(SID) == f"{SID}/"
    assert s3.archive_key(SID) == f"{SID}/sessionarchive.tar.bz2"
    assert s3.archive_key(SID, "mine.tar.bz2") == f"{SID}/mine.tar.bz2"
    assert s3.results_key(SID, 3) == f"{SID}/results_job_3.tar.bz2"
    assert s3.stdouterr_key(SID, 3) == f"{SID}/stdouterr_job_3.tar.bz2"
    assert s3.processjobslog_key(SID, 1) == f"{SID}/processjobslog_LI_1.tar.bz2"
    assert s3.live_log_key(SID, 2) == f"{SID}/live/job_2.log"
    assert s3.kill_key(SID, 2) == f"{SID}/control/kill_job_2"
    assert s3.control_prefix(SID) == f"{SID}/control/"
    assert s3.status_prefix(SID) == f"{SID}/status/"
    assert s3.status_key(SID, 12) == f"{SID}/status/job12.json"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (s3.results_key(SID, 3), ("results", 3)),
        (s3.stdouterr_key(SID, 14), ("stdouterr", 14)),
        (s3.processjobslog_key(SID, 0), ("processjobslog", 0)),
        (s3.live_log_key(SID, 2), ("live", 2)),
        (s3.status_key(SID, 7), ("status", 7)),
        (s3.kill_key(SID, 7), ("control", None)),
        (s3.archive_key(SID), ("archive", None)),
        (f"{SID}/notes.txt", ("other", None)),
    ],
)
def test_classify(key: str, expected: tuple) -> None:
    assert s3.classify(key) == expected


def test_attempt_heartbeat_claim_and_control_keys() -> None:
    assert s3.attempt_results_key(SID, 3, 2) == f"{SID}/attempts/job_3/2/results_job_3.tar.bz2"
    assert s3.attempt_stdouterr_key(SID, 3, 1) == f"{SID}/attempts/job_3/1/stdouterr_job_3.tar.bz2"
    assert s3.attempts_prefix(SID, 3) == f"{SID}/attempts/job_3/"
    assert s3.processjobslog_key(SID, 1, reservation=1) == f"{SID}/processjobslog_LI_1.tar.bz2"
    assert (
        s3.processjobslog_key(SID, 1, reservation=3)
        == f"{SID}/reservations/3/processjobslog_LI_1.tar.bz2"
    )
    assert s3.heartbeat_key(SID, "i-0abc") == f"{SID}/heartbeat/i-0abc.json"
    assert s3.claim_key(SID, 12, 2) == f"{SID}/claims/job_12_attempt_2"
    assert s3.requeue_key(SID, 12, 3) == f"{SID}/queue/job_12_attempt_3"
    assert s3.parse_attempt_key(s3.claim_key(SID, 12, 2)) == (12, 2)
    assert s3.parse_attempt_key(f"{SID}/claims/other") is None
    assert s3.watch_key(SID, 4) == f"{SID}/control/watch_job_4"
    assert s3.parse_control_key(s3.watch_key(SID, 4)) == ("watch", 4)
    assert s3.parse_control_key(s3.kill_key(SID, 9)) == ("kill", 9)
    assert s3.parse_control_key(f"{SID}/control/other") is None


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (f"{SID}/attempts/job_3/2/results_job_3.tar.bz2", ("attempt", 3)),
        (f"{SID}/heartbeat/i-1.json", ("heartbeat", None)),
        (f"{SID}/claims/job_5_attempt_1", ("claim", 5)),
        (f"{SID}/queue/job_5_attempt_2", ("queue", 5)),
        (f"{SID}/reservations/2/processjobslog_LI_0.tar.bz2", ("processjobslog", 0)),
    ],
)
def test_classify_our_folders(key: str, expected: tuple) -> None:
    assert s3.classify(key) == expected
