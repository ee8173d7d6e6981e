"""Kill requests mirrored as objects under ``session_id/control/`` (shared by both stores)."""

from __future__ import annotations

from awsac_agent import s3layout
from awsac_agent.s3objects import delete_batches, deleted_keys
from awsac_agent.status import KILL_REQUESTED, utcnow_iso

from ..cloud import Cloud


async def put_kill_object(cloud: Cloud, bucket: str, session_id: str, jobnr: int) -> str:
    """Write ``control/kill_job_N``; returns its key."""
    s3 = await cloud.client("s3")
    key = s3layout.kill_key(session_id, jobnr)
    await s3.put_object(Bucket=bucket, Key=key, Body=f"{KILL_REQUESTED} {utcnow_iso()}\n".encode())
    return key


async def list_keys(cloud: Cloud, bucket: str, prefix: str) -> list[tuple[str, str, int]]:
    """(key, etag, size) of every object under ``prefix`` (paginated)."""
    s3 = await cloud.client("s3")
    out: list[tuple[str, str, int]] = []
    paginator = s3.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []) or []:
            out.append((obj["Key"], obj.get("ETag", "").strip('"'), int(obj.get("Size", 0))))
    return out


async def delete_keys(cloud: Cloud, bucket: str, keys: list[str]) -> list[str]:
    """Delete ``keys`` (batches of ``s3objects.delete_batches``); returns the keys deleted, and
    raises CloudError when S3 names keys it could not delete."""
    s3 = await cloud.client("s3")
    done: list[str] = []
    for delete in delete_batches(keys):
        done += deleted_keys(bucket, await s3.delete_objects(Bucket=bucket, Delete=delete))
    return done
