"""S3 stores a whole-object CRC32 for what the client and the agent upload (the local cloud
too), and ``results`` decides "identical" by it, whatever the part size of the upload."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from awsac_agent import s3checksum

from awsac_tui import session
from awsac_tui.cloud import Cloud
from awsac_tui.spec import CloudProfile

BUCKET = "awsac-checksum-tests"


@pytest.fixture
def s3(aws_env: dict[str, str], boto3_client: Callable[[str], Any]) -> Any:
    client = boto3_client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.mark.parametrize("size", [1000, session.PART_SIZE * 2 + 5])
async def test_client_upload_stores_the_whole_object_crc32(
    s3: Any, tmp_path: Path, size: int
) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(os.urandom(size))
    async with Cloud(CloudProfile(local=True)) as cloud:
        await session.upload_file(cloud, path, BUCKET, "sid/a.bin")
    head = s3.head_object(Bucket=BUCKET, Key="sid/a.bin", ChecksumMode="ENABLED")
    assert s3checksum.stored_checksum(head) == ("CRC32", s3checksum.file_checksum(path))


def test_agent_upload_args_store_the_whole_object_crc32(s3: Any, tmp_path: Path) -> None:
    from boto3.s3.transfer import S3Transfer, TransferConfig

    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(40 << 20))
    config = TransferConfig(multipart_threshold=16 << 20, multipart_chunksize=16 << 20)
    args = s3checksum.upload_args(S3Transfer.ALLOWED_UPLOAD_ARGS)
    assert args == {"ChecksumAlgorithm": "CRC32", "ChecksumType": "FULL_OBJECT"}
    s3.upload_file(str(path), BUCKET, "sid/big.bin", Config=config, ExtraArgs=args)
    head = s3.head_object(Bucket=BUCKET, Key="sid/big.bin", ChecksumMode="ENABLED")
    assert "-" in head["ETag"]  # a multipart upload ...
    assert s3checksum.stored_checksum(head) == ("CRC32", s3checksum.file_checksum(path))
    # ... and an old boto3 without ChecksumType gets the algorithm alone, or nothing
    assert s3checksum.upload_args(["ChecksumAlgorithm"]) == {"ChecksumAlgorithm": "CRC32"}
    assert s3checksum.upload_args([]) == {}


def test_composite_checksums_are_not_taken_for_whole_object_ones() -> None:
    assert s3checksum.stored_checksum({"ChecksumCRC32": "abc=-3"}) is None
    assert (
        s3checksum.stored_checksum({"ChecksumCRC32": "abc=", "ChecksumType": "COMPOSITE"}) is None
    )
    assert s3checksum.stored_checksum({"ETag": '"0123456789abcdef0123456789abcdef"'}) == (
        "MD5",
        "0123456789abcdef0123456789abcdef",
    )
    assert s3checksum.stored_checksum({"ETag": '"0123456789abcdef0123456789abcdef-2"'}) is None
