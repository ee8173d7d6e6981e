"""``awsac logs`` streams a saved log in bounded memory, whatever its size."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from awsac_agent.archive import bundle_log

from awsac_tui import session
from awsac_tui.cloud import Cloud
from awsac_tui.records import SessionRecord
from awsac_tui.spec import CloudProfile

BUCKET = "awsac-logs-tests"
pytestmark = pytest.mark.slow


async def test_a_big_saved_log_streams_in_bounded_memory(
    aws_env: dict[str, str], boto3_client: Callable[[str], Any], tmp_path: Path
) -> None:
    log = tmp_path / "stdouterr_job_1.log"
    line = b"EVGEN 00000001 px=1.2345 py=-0.5 pz=33.1 E=120.25 status=1 " + b"x" * 40 + b"\n"
    with log.open("wb") as fh:
        for _ in range(36):
            fh.write(line * 8000)  # 36 x 0.86 MB: a 31 MB log, more than the memory allowed
    bundle = tmp_path / "stdouterr_job_1.tar.bz2"
    bundle_log(log, bundle, log.name, level=1)
    s3 = boto3_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.upload_file(str(bundle), BUCKET, "sid/stdouterr_job_1.tar.bz2")
    record = SessionRecord(
        session_id="sid", state="ended", bucket=BUCKET, cloud=CloudProfile(local=True)
    )
    digest = hashlib.sha256()
    size = [0]

    def sink(block: bytes) -> None:
        digest.update(block)
        size[0] += len(block)

    async with Cloud(record.cloud) as cloud:
        tracemalloc.start()
        try:
            assert await session.saved_log(record, 1, sink, cloud=cloud)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert size[0] == log.stat().st_size
    assert digest.hexdigest() == hashlib.sha256(log.read_bytes()).hexdigest()
    # aiobotocore's, bz2's and tarfile's buffers included; the log is bigger than that
    assert peak < 24 << 20, f"peak {peak >> 20} MiB for a {size[0] >> 20} MiB log"
