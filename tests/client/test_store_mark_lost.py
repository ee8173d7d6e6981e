"""mark_lost on both client stores: a live job becomes lost with its reason; a terminal one stays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from awsac_agent.status import FINISHED, LOST, RUNNING, JobRecord

from awsac_tui.cloud import Cloud
from awsac_tui.spec import CloudProfile
from awsac_tui.store import open_store

SID = "260101_1200--lost--beef"
BUCKET = "awsac-store-lost"


@pytest.mark.parametrize("kind", ["simpledb", "s3"])
async def test_mark_lost(
    kind: str, aws_env: dict[str, str], boto3_client: Callable[[str], Any]
) -> None:
    boto3_client("s3").create_bucket(Bucket=BUCKET)
    async with Cloud(CloudProfile(local=True)) as cloud:
        store = open_store(kind, cloud, SID, BUCKET)
        await store.reset()
        assert await store.mark_lost(1, "instance i-1 is terminated") is True  # no record yet
        # the agent has written job 2 as running and job 3 as finished
        writer = _sync_store(kind, boto3_client)
        writer.put(JobRecord(2, RUNNING, instance_id="i-2"))
        writer.put(JobRecord(3, FINISHED, instance_id="i-2", returncode=0))
        assert await store.mark_lost(2, "instance i-2 is terminated") is True
        assert await store.mark_lost(3, "instance i-2 is terminated") is False
        got = {r.jobnr: r for r in await store.read_all()}
        assert (got[1].status, got[1].error) == (LOST, "instance i-1 is terminated")
        assert (got[2].status, got[2].error) == (LOST, "instance i-2 is terminated")
        assert got[3].status == FINISHED
        await store.delete_all()


def _sync_store(kind: str, boto3_client: Callable[[str], Any]) -> Any:
    """The agent's own (synchronous) store of the same session."""
    from awsac_agent.store import S3Store, SimpleDbStore

    if kind == "s3":
        return S3Store(boto3_client("s3"), BUCKET, SID)
    return SimpleDbStore(boto3_client("sdb"), SID)
