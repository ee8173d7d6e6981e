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
