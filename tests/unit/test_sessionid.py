"""Session ids: YYMMDD_HHMM--shortdescr--xxxx."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from awsac_agent.sessionid import (
    check_shortdescr,
    is_session_id,
    new_session_id,
    session_started,
)

NOW = datetime(2008, 10, 13, 14, 5, tzinfo=UTC)


def test_new_session_id_format() -> None:
    sid = new_session_id("eventgen", now=NOW, random_hex="a1b2")
    assert sid == "081013_1405--eventgen--a1b2"
    assert is_session_id(sid)
    assert session_started(sid) == NOW


def test_new_session_ids_are_random() -> None:
    ids = {new_session_id("x", now=NOW) for _ in range(50)}
    assert len(ids) > 40
    assert all(is_session_id(i) for i in ids)


@pytest.mark.parametrize(
    ("shortdescr", "message"),
    [
        ("", "short description is empty (give 1 to 8 letters, digits or _ e.g. 'eventgen')"),
        ("eventgen2", "short description 'eventgen2' is 9 characters long (at most 8)"),
        ("ev-gen", "short description 'ev-gen' may only use letters, digits and _"),
        ("ev gen", "may only use letters, digits and _"),
    ],
)
def test_bad_shortdescr(shortdescr: str, message: str) -> None:
    assert message in (check_shortdescr(shortdescr) or "")
    with pytest.raises(ValueError, match="short description"):
        new_session_id(shortdescr, now=NOW)


def test_good_shortdescr() -> None:
    assert check_shortdescr("eventgen") is None
    assert check_shortdescr("a_1") is None


@pytest.mark.parametrize(
    "text",
    [
        "081013_1405--eventgen--A1B2",  # uppercase hex
        "081013_1405--eventgen--a1b",
        "081013-1405--eventgen--a1b2",
        "081013_1405--toolongname--a1b2",
        "081013_1405-eventgen-a1b2",
        "",
    ],
)
def test_not_session_ids(text: str) -> None:
    assert not is_session_id(text)
    assert session_started(text) is None


def test_bad_random_hex() -> None:
    with pytest.raises(ValueError, match="not a valid session id"):
        new_session_id("x", now=NOW, random_hex="zz")


def test_impossible_date_is_not_a_start_time() -> None:
    assert session_started("081399_2599--eventgen--a1b2") is None
