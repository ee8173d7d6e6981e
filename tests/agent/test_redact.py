"""The credential redactor."""

from __future__ import annotations

from pathlib import Path

import pytest
from awsac_agent.redact import REDACTED, redact, redact_file

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize(
    "line, leaked",
    [
        ("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        ("key ASIAY34FZKBOKMUTVV7A used", "ASIAY34FZKBOKMUTVV7A"),
        (f"AWS_SECRET_ACCESS_KEY={SECRET}", SECRET),
        (f"aws_secret_access_key = {SECRET}", SECRET),
        (f'"SecretAccessKey" : "{SECRET}",', SECRET),
        (f"the key {SECRET} alone", SECRET),
        (
            "AWS_SESSION_TOKEN=FwoGZXIvYXdzEBYaDHVzZXJ0b2tlbnRlc3QiLCJhbGciOiJIUzI1NiJ9abc",
            "FwoGZXIvYXdz",
        ),
        ('"Token" : "IQoJb3JpZ2luX2VjEHoaCXVzLWVhc3QtMSJHMEUCIQD5exampletoken",', "IQoJb3Jp"),
        ("x-amz-security-token: AQoDYXdzEJr1K2xlbmd0aGx5dG9rZW4xMjM0NTY3ODkw", "AQoDYXdzEJr"),
        ("token " + "IQoJb3JpZ2luX2Vj" + "A" * 300, "IQoJb3JpZ2luX2Vj"),
    ],
)
def test_credentials_are_redacted(line: str, leaked: str) -> None:
    out = redact(line)
    assert leaked not in out
    assert REDACTED in out


@pytest.mark.parametrize(
    "line",
    [
        "commit 3f786850e387550fdab836ed7e6dc881de23001b merged",  # 40 hex: a git hash
        "generated 1000 events in 12.5 s",
        "/mnt/awsac/jobs/1/stdouterr_job_1.log",
        "snap-0123456789abcdef0 vol-0a1b2c3d4e5f67890 i-0123456789abcdef0",
        "AKIA is a prefix, not a key",
        "",
    ],
)
def test_ordinary_text_is_kept(line: str) -> None:
    assert redact(line) == line


def test_redact_file_counts_changed_lines(tmp_path: Path) -> None:
    src = tmp_path / "log"
    src.write_text(f"ok\nAWS_SECRET_ACCESS_KEY={SECRET}\nok too\nAKIAIOSFODNN7EXAMPLE\n")
    dest = tmp_path / "clean"
    assert redact_file(src, dest) == 2
    text = dest.read_text()
    assert SECRET not in text and "AKIAIOSFODNN7EXAMPLE" not in text
    assert text.startswith("ok\n") and "ok too\n" in text
