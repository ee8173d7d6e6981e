"""Kill requests mirrored as objects under ``session_id/control/`` (shared by both stores)."""

from __future__ import annotations

from awsac_agent import s3layout
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
    """Delete ``keys`` in batches of 1000; returns the keys deleted."""
    s3 = await cloud.client("s3")
    done: list[str] = []
    for i in range(0, len(keys), 1000):
        batch = keys[i : i + 1000]
        resp = await s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": False}
        )
        done.extend(d["Key"] for d in resp.get("Deleted", []) or [])
        errors = resp.get("Errors") or []
        if errors:
            from awsac_agent.errors import CloudError

            first = errors[0]
            raise CloudError(
                f"could not delete s3://{bucket}/{first.get('Key')}: {first.get('Code')} "
                f"{first.get('Message')} ({len(errors)} objects failed; run cleanup again)"
            )
    return done
