"""Errors outside the cloud: a local file problem and wrong arguments are one line each, no traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from awsac_agent import s3layout

from awsac_tui import records
from awsac_tui.records import SessionRecord
from awsac_tui.spec import CloudProfile

SID = "260101_1200--oserr--beef"
BUCKET = "awsac-local-errors"


def test_results_into_a_file_names_the_path(
    cli: Callable[..., tuple[int, str, str]], boto3_client: Callable[[str], Any], tmp_path: Path
) -> None:
    s3 = boto3_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=s3layout.results_key(SID, 1), Body=b"results")
    records.save_record(
        SessionRecord(
            session_id=SID,
            state="ended",
            bucket=BUCKET,
            n_jobs=1,
            cloud=CloudProfile(local=True),
            status_store="s3",
        )
    )
    (tmp_path / f"session-{SID}").write_text("a file where the results folder belongs\n")
    rc, out, err = cli("results", SID, "-o", str(tmp_path))
    assert rc == 1, (out, err)
    assert "Traceback" not in out + err
    message = err.strip()
    assert message.startswith("awsac: ") and message.count("\n") == 0, message
    assert f"session-{SID}" in message and "check that the path is right" in message


def test_usage_errors_say_awsac_once(cli: Callable[..., tuple[int, str, str]]) -> None:
    rc, _, err = cli("--check")
    assert rc == 2 and err.strip() == "awsac: when --check is set, -c CONFIGFILE is needed"
    rc, _, err = cli("kill", SID, "one")
    assert rc == 2 and err.startswith("awsac: kill: argument job: invalid int value: 'one'")
    assert err.count("awsac:") == 1 and "(see `awsac kill --help`)" in err
