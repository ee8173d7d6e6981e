"""The credential redactor."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from awsac_agent.redact import REDACTED, examples, redact, redact_file

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


# ---------------------------------------------------------------- one test per shape of the table


@pytest.mark.parametrize(
    ("name", "example", "secret"), examples(), ids=[n for n, _, _ in examples()]
)
def test_every_shape_of_the_table_is_redacted(name: str, example: str, secret: str) -> None:
    out = redact(example)
    assert secret not in out, name
    assert REDACTED in out


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("GITHUB_TOKEN=ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "ghp_a1B2c3D4"),
        ("export MY_DB_PASSWORD='correct horse'", "correct horse"),
        ("OPENAI_API_KEY=sk-abcdefghijklmnopqrstuvwx", "sk-abcdefghij"),
        ("APP_SECRET: s3cr3t-value", "s3cr3t-value"),
        ("SLACK_BOT_TOKEN=xoxb-123-456-abcdefABCDEF", "xoxb-123"),
        ('{"password": "pw12345"}', "pw12345"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github_pat_11"),
    ],
)
def test_env_dump_lines(line: str, secret: str) -> None:
    assert secret not in redact(line)


@pytest.mark.parametrize(
    "line",
    [
        "PASSWORD_FILE=/run/secrets/db",  # a path to a secret, not the secret
        "TOKEN=$GITHUB_TOKEN",  # a reference
        "tokens: 12 parsed",
        "ask-user-for-input",
        "https://example.org/path",
    ],
)
def test_near_misses_are_kept(line: str) -> None:
    assert redact(line) == line


def test_multi_line_private_key_across_chunks(tmp_path: Path, monkeypatch) -> None:
    from awsac_agent import redact as mod

    monkeypatch.setattr(mod, "CHUNK", 64)  # the key block spans many chunks
    body = "".join(f"MIIE{i:060d}\n" for i in range(20))
    src = tmp_path / "log"
    src.write_text(
        f"before\n-----BEGIN OPENSSH PRIVATE KEY-----\n{body}-----END OPENSSH PRIVATE KEY-----\nafter\n"
    )
    dest = tmp_path / "clean"
    assert redact_file(src, dest) >= 1
    text = dest.read_text()
    assert "MIIE" not in text
    assert text.startswith("before\n-----BEGIN OPENSSH PRIVATE KEY-----\n[REDACTED]\n")
    assert text.endswith("-----END OPENSSH PRIVATE KEY-----\nafter\n")


def test_stream_keeps_everything_else_byte_for_byte(tmp_path: Path, monkeypatch) -> None:
    from awsac_agent import redact as mod

    monkeypatch.setattr(mod, "CHUNK", 100)
    data = b"".join(b"event %d \xff\xfe not utf-8, px=%d\n" % (i, i) for i in range(500))
    data += b"x " * 500  # a last line without a newline, longer than a chunk
    out: list[bytes] = []
    assert mod.redact_stream(io.BytesIO(data), out.append) == 0
    assert b"".join(out) == data
