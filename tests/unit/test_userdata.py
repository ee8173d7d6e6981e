"""User-data: the legacy string, the cloud-init wrapper, and the 16 KB limit."""

from __future__ import annotations

import pytest
from awsac_agent.errors import FormatError
from awsac_agent.userdata import (
    MARKER,
    MAX_USERDATA_BYTES,
    UserData,
    build_userdata,
    check_size,
    parse_userdata,
    wrap_cloud_init,
)

SID = "081013_1405--eventgen--a1b2"


def test_legacy_string_round_trip() -> None:
    ud = UserData(SID, "atlassessions", "sessionarchive.tar.bz2", 2)
    text = build_userdata(ud)
    assert text == f"{SID};atlassessions;sessionarchive.tar.bz2;2"
    assert parse_userdata(text) == ud


def test_extra_fields_sorted_and_parsed() -> None:
    ud = UserData(
        SID, "b-1.x", "a.tar.bz2", 4, {"store": "s3", "max_job_min": "30", "lease_h": "12"}
    )
    text = build_userdata(ud)
    assert text == f"{SID};b-1.x;a.tar.bz2;4;lease_h=12;max_job_min=30;store=s3"
    back = parse_userdata(text)
    assert back == ud
    assert back is not None and back.get("store") == "s3" and back.get("nope", "d") == "d"


def test_paper_string_parses() -> None:
    """The paper's four-field string, as its client built it."""
    ud = parse_userdata(f"  {SID};atlassessions;sessionarchive.tar.bz2;2\n")
    assert ud == UserData(SID, "atlassessions", "sessionarchive.tar.bz2", 2)


def test_cloud_init_wrapper_round_trip() -> None:
    legacy = build_userdata(UserData(SID, "atlassessions", "sessionarchive.tar.bz2", 2))
    script = wrap_cloud_init(legacy, "pip install awsac\nawsac-agent autorun\n")
    assert script.startswith(f"#!/bin/sh\n{MARKER} {legacy}\n")
    assert script.endswith("awsac-agent autorun\n")
    assert parse_userdata(script) == parse_userdata(legacy)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "#!/bin/sh\necho no marker here\n",
        "#cloud-config\npackages: [python3]\n",
        "not;ours",
        f"{SID};bucket;archive.tar.bz2;0",
        f"{SID};bucket;archive.tar.bz2;two",
        "badid;bucket;archive.tar.bz2;2",
        f"{SID};bucket;archive.tar.bz2;2;noequals",
        f"{SID};bucket;archive.tar.bz2;2\nsecond line",
    ],
)
def test_not_ours(text: str) -> None:
    assert parse_userdata(text) is None


@pytest.mark.parametrize(
    ("ud", "message"),
    [
        (UserData("bad", "bucket", "a.tar.bz2", 2), "user-data: 'bad' is not a session id"),
        (
            UserData(SID, "Bad_Bucket", "a.tar.bz2", 2),
            "user-data: 'Bad_Bucket' is not a bucket name",
        ),
        (
            UserData(SID, "bucket", "a;b.tar.bz2", 2),
            "archive name 'a;b.tar.bz2' has unsafe characters",
        ),
        (
            UserData(SID, "bucket", "a.tar.bz2", 0),
            "user-data: cores per instance must be at least 1",
        ),
        (
            UserData(SID, "bucket", "a.tar.bz2", 2, {"Bad": "x"}),
            "field Bad='x' has unsafe characters",
        ),
        (
            UserData(SID, "bucket", "a.tar.bz2", 2, {"k": "a;b"}),
            "field k='a;b' has unsafe characters",
        ),
    ],
)
def test_build_rejects(ud: UserData, message: str) -> None:
    with pytest.raises(FormatError) as exc:
        build_userdata(ud)
    assert message in str(exc.value)


def test_size_limit() -> None:
    check_size("x" * MAX_USERDATA_BYTES)  # exactly 16 KB is fine
    with pytest.raises(FormatError) as exc:
        check_size("x" * (MAX_USERDATA_BYTES + 1))
    assert str(exc.value).startswith(
        f"user-data is {MAX_USERDATA_BYTES + 1} bytes, over EC2's limit of {MAX_USERDATA_BYTES} bytes"
    )
    with pytest.raises(FormatError, match="over EC2's limit"):
        wrap_cloud_init(f"{SID};b;a.tar.bz2;2", "echo " + "y" * MAX_USERDATA_BYTES)
    with pytest.raises(FormatError, match="over EC2's limit"):
        build_userdata(UserData(SID, "bucket", "a.tar.bz2", 2, {"pad": "z" * MAX_USERDATA_BYTES}))


def test_non_ascii_digits_are_not_a_core_count() -> None:
    assert parse_userdata(f"{SID};bucket;archive.tar.bz2;\u00b2") is None


def test_queue_and_retry_fields() -> None:
    from awsac_agent.userdata import extras

    extra = extras(
        store="s3",
        max_job_min=30,
        assignment="queue",
        max_attempts=3,
        spot=True,
        reservation=2,
        instances=4,
    )
    text = build_userdata(UserData(SID, "b-1", "a.tar.bz2", 2, extra))
    assert text == (
        f"{SID};b-1;a.tar.bz2;2;assignment=queue;instances=4;max_attempts=3;max_job_min=30;"
        "reservation=2;spot=1;store=s3"
    )
    ud = parse_userdata(text)
    assert ud is not None
    assert (ud.assignment, ud.jobs, ud.max_attempts, ud.spot, ud.reservation, ud.instances) == (
        "queue",
        None,
        3,
        True,
        2,
        4,
    )


def test_paper_string_means_the_static_rule() -> None:
    ud = parse_userdata(f"{SID};atlassessions;sessionarchive.tar.bz2;2")
    assert ud is not None
    assert (ud.assignment, ud.jobs, ud.max_attempts, ud.spot, ud.reservation) == (
        "static",
        None,
        None,
        False,
        1,
    )


def test_retry_reservation_job_list() -> None:
    from awsac_agent.userdata import extras, format_job_list, parse_job_list

    assert format_job_list([13, 3, 4, 5, 7, 12, 4]) == "3-5,7,12-13"
    assert format_job_list([1]) == "1"
    assert parse_job_list("3-5,7,12-13") == [3, 4, 5, 7, 12, 13]
    text = build_userdata(UserData(SID, "b-1", "a.tar.bz2", 2, extras(jobs=[2, 9, 10])))
    assert text.endswith(";jobs=2,9-10")
    ud = parse_userdata(text)
    assert ud is not None and ud.jobs == [2, 9, 10] and ud.assignment == "static"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"assignment": "random"}, "assignment='random' is not a job assignment"),
        ({"jobs": "3-x"}, "'3-x' is not a job number or range"),
        ({"jobs": "7-3"}, "range '7-3' runs backwards"),
        ({"jobs": "0"}, "'0' is not a job number"),
        ({"max_attempts": "0"}, "max_attempts='0' must be a whole number of at least 1"),
        ({"reservation": "two"}, "reservation='two' must be a whole number"),
    ],
)
def test_bad_queue_fields_are_refused(extra: dict[str, str], message: str) -> None:
    with pytest.raises(FormatError) as exc:
        build_userdata(UserData(SID, "bucket", "a.tar.bz2", 2, extra))
    assert message in str(exc.value)
