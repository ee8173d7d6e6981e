"""A failed multipart upload is aborted; when the abort fails too, the user is told how to finish it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from awsac_agent import faults
from awsac_agent.errors import CloudError
from botocore.exceptions import ClientError

from awsac_tui import session
from awsac_tui.cloud import Cloud
from awsac_tui.spec import CloudProfile

BUCKET = "awsac-upload-abort-tests"
KEY = "sid/sessionarchive.tar.bz2"


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "sessionarchive.tar.bz2"
    path.write_bytes(b"x" * (session.PART_SIZE + 1))  # one byte over: a multipart upload
    return path


@pytest.fixture
def s3(aws_env: dict[str, str], boto3_client: Callable[[str], Any]) -> Iterator[Any]:
    client = boto3_client("s3")
    client.create_bucket(Bucket=BUCKET)
    yield client
    faults.reset("")
    for up in client.list_multipart_uploads(Bucket=BUCKET).get("Uploads") or []:
        client.abort_multipart_upload(Bucket=BUCKET, Key=up["Key"], UploadId=up["UploadId"])


async def _upload(path: Path) -> None:
    async with Cloud(CloudProfile(local=True)) as cloud:
        await session.upload_file(cloud, path, BUCKET, KEY)


async def test_failed_upload_is_aborted(big_file: Path, s3: Any) -> None:
    faults.reset("s3:UploadPart:fail=99")
    with pytest.raises(ClientError):
        await _upload(big_file)
    assert not s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")


async def test_failed_abort_names_the_upload_and_the_fix(big_file: Path, s3: Any) -> None:
    faults.reset("s3:UploadPart:fail=99,s3:AbortMultipartUpload:fail=99:status=403:AccessDenied")
    with pytest.raises(CloudError) as info:
        await _upload(big_file)
    (left,) = s3.list_multipart_uploads(Bucket=BUCKET)["Uploads"]
    message = str(info.value)
    assert f"s3://{BUCKET}/{KEY}" in message and "AccessDenied" in message
    assert f"aws s3api abort-multipart-upload --bucket {BUCKET} --key {KEY}" in message
    assert f"--upload-id {left['UploadId']}" in message
