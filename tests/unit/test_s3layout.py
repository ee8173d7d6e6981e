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
