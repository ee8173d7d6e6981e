"""The local cloud's server under concurrent requests: every answer is one AWS would give.

moto's backends are not thread-safe: a describe call that iterates the tags while another request
changes them raised RuntimeError inside moto, the server answered an HTML 500, and botocore failed
with ResponseParserError (issue 12: ``DescribeSnapshots failed (ResponseParserError)`` under load).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import botocore.config
import pytest

from awsac_tui.local.common import AVAILABILITY_ZONE

READERS = 2
WRITERS = 2
SECONDS = 2.0  # bounded: each thread stops by itself
MIN_CALLS = 5
MAX_CALLS = 400


def _fail_fast(local_cloud: Any) -> Any:
    """An EC2 client with no retries, so a bad answer is seen rather than retried away."""
    import boto3

    from awsac_tui.local.service import client_env

    env = client_env(local_cloud)
    return boto3.session.Session().client(
        "ec2",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=botocore.config.Config(retries={"total_max_attempts": 1}),
    )


@pytest.mark.slow  # seconds alone, up to a minute on a loaded machine
def test_concurrent_tag_writes_and_describes_all_answer_well_formed(local_cloud: Any) -> None:
    ec2 = _fail_fast(local_cloud)
    # many tagged resources: moto scans every resource's tags for each volume it describes, so a
    # describe spends its time in the loops that a concurrent tag write breaks
    volumes = [
        ec2.create_volume(AvailabilityZone=AVAILABILITY_ZONE, Size=1)["VolumeId"] for _ in range(60)
    ]
    ec2.create_tags(Resources=volumes, Tags=[{"Key": f"base{i}", "Value": "v"} for i in range(10)])
    errors: list[str] = []
    counts = {"reads": 0, "writes": 0}
    clients = [_fail_fast(local_cloud) for _ in range(READERS + WRITERS)]
    deadline = time.monotonic() + SECONDS

    def going(done: int) -> bool:
        """Until the deadline, and at least MIN_CALLS calls each (a loaded machine is slow)."""
        return done < MAX_CALLS and (time.monotonic() < deadline or done < MIN_CALLS)

    def writer(n: int) -> None:
        client = clients[n]
        i = 0
        while going(i):
            try:
                client.create_tags(
                    Resources=volumes, Tags=[{"Key": f"w{n}-{i % 10}", "Value": "v"}]
                )
                client.delete_tags(Resources=volumes, Tags=[{"Key": f"w{n}-{(i + 5) % 10}"}])
                counts["writes"] += 2
            except Exception as exc:  # noqa: BLE001 - every failure is what the test reports
                errors.append(f"write: {type(exc).__name__}: {str(exc)[:200]}")
            i += 1

    def reader(n: int) -> None:
        client = clients[WRITERS + n]
        i = 0
        while going(i):
            i += 1
            try:
                got = client.describe_volumes(VolumeIds=volumes[:5])["Volumes"]
                assert len(got) == 5
                counts["reads"] += 1
            except Exception as exc:  # noqa: BLE001
                errors.append(f"read: {type(exc).__name__}: {str(exc)[:200]}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    threads += [threading.Thread(target=reader, args=(n,)) for n in range(READERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS + 60)
    ec2.delete_tags(Resources=volumes)
    for volume in volumes:
        ec2.delete_volume(VolumeId=volume)
    assert not errors, f"{len(errors)} bad answers, first: {errors[:3]}"
    assert counts["reads"] > 0 and counts["writes"] > 0


def test_an_exception_inside_moto_is_an_internal_error_botocore_can_read() -> None:
    """A failure inside the emulator answers AWS's InternalError (500, retried by botocore)."""
    from awsac_tui.local.server import LocalCloudApp

    def broken_moto(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        raise RuntimeError("dictionary changed size during iteration")

    app = LocalCloudApp(broken_moto, service=None)  # type: ignore[arg-type]
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"] = status

    import io

    from botocore.parsers import create_parser

    body = b"Action=DescribeVolumes&Version=2016-11-15"
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    answer = b"".join(app(environ, start_response))
    assert seen["status"].startswith("500")
    parsed = create_parser("ec2").parse({"status_code": 500, "headers": {}, "body": answer}, None)
    assert parsed["Error"]["Code"] == "InternalError"
    assert "dictionary changed size" in parsed["Error"]["Message"]


def test_an_exception_inside_moto_answers_s3_in_its_own_error_form() -> None:
    from awsac_tui.local.server import LocalCloudApp

    def broken_moto(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        raise KeyError("bucket")

    app = LocalCloudApp(broken_moto, service=None)  # type: ignore[arg-type]
    import io

    from botocore.parsers import create_parser

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/bucket/key", "wsgi.input": io.BytesIO()}
    answer = b"".join(app(environ, lambda status, headers: None))
    parsed = create_parser("rest-xml").parse(
        {"status_code": 500, "headers": {}, "body": answer}, None
    )
    assert parsed["Error"]["Code"] == "InternalError"
