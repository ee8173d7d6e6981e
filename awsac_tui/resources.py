"""The session's tagged resources as the cloud reports them: instances and volumes (paginated
Describe* filtered by the session tag) and the objects under an S3 prefix.

Below both the verbs (session/) and the Monitor, which read them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from awsac_agent.sessionid import session_tag_filter

from .cloud import Cloud, cloud_errors
from .store._control import list_keys


async def _describe_tagged(
    cloud: Cloud, session_id: str, operation: str, pick: Callable[[dict[str, Any]], Iterable[Any]]
) -> list[dict[str, Any]]:
    """Every resource of a paginated EC2 Describe* call filtered by the session tag."""
    ec2 = await cloud.client("ec2")
    out: list[dict[str, Any]] = []
    async with cloud_errors(operation):
        pag = ec2.get_paginator(operation)
        async for page in pag.paginate(Filters=[session_tag_filter(session_id)]):
            out.extend(pick(page))
    return out


async def describe_instances(cloud: Cloud, session_id: str) -> list[dict[str, Any]]:
    """Every instance tagged with the session (paginated)."""
    return await _describe_tagged(
        cloud,
        session_id,
        "describe_instances",
        lambda page: (
            i for res in page.get("Reservations") or [] for i in res.get("Instances") or []
        ),
    )


async def describe_volumes(cloud: Cloud, session_id: str) -> list[dict[str, Any]]:
    """Every volume tagged with the session (paginated)."""
    return await _describe_tagged(
        cloud, session_id, "describe_volumes", lambda page: page.get("Volumes") or []
    )


async def list_objects(cloud: Cloud, bucket: str, prefix: str) -> list[tuple[str, str, int]]:
    """(key, ETag, size) of every object under ``prefix``."""
    async with cloud_errors(f"listing s3://{bucket}/{prefix}"):
        return await list_keys(cloud, bucket, prefix)
