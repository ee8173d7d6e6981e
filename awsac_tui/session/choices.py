"""What the account offers for composing a session (snapshots, images, priced instance types,
key pairs, buckets): one type, shared by the verbs and the TUI's compose screen."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from ..cloud import CLOUD_EXCEPTIONS, CREDENTIAL_CODES, Cloud, error_code
from .pricing import price_table


@dataclass(frozen=True)
class SnapshotInfo:
    """A snapshot the account owns (job data, not an image's root disk)."""

    snapshot_id: str
    description: str = ""
    size_gib: int | None = None
    start_time: str = ""  # ISO 8601 UTC, "" when unknown


@dataclass(frozen=True)
class ImageInfo:
    image_id: str
    name: str = ""


@dataclass(frozen=True)
class InstanceTypeInfo:
    name: str
    vcpus: int
    hourly_price: float | None = None  # USD per hour on demand, None when the table has none


@dataclass(frozen=True)
class ComposeChoices:
    """What the account offers for composing a session; ``notes`` say which lists could not be
    read (e.g. AccessDenied). Snapshots newest first; instance types cheapest first."""

    snapshots: tuple[SnapshotInfo, ...] = ()
    images: tuple[ImageInfo, ...] = ()
    instance_types: tuple[InstanceTypeInfo, ...] = ()
    key_pairs: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


async def compose_choices(cloud: Cloud) -> ComposeChoices:
    """The account's snapshots, images, priced instance types, key pairs and buckets, in parallel.

    Each list is read on its own: a call the account may not make (AccessDenied) or that fails
    leaves its list empty and adds a note; a refused ListBuckets is silent (buckets are optional).
    Snapshots made for images (an AMI's root disk) are left out: they are not job data.
    """
    prices = await asyncio.to_thread(price_table, cloud.region)  # a file read: off the loop

    async def pages(service: str, operation: str, key: str, **kw: Any) -> list[dict[str, Any]]:
        client = await cloud.client(service)
        out: list[dict[str, Any]] = []
        async for page in client.get_paginator(operation).paginate(**kw):
            out.extend(page.get(key) or [])
        return out

    async def snapshots() -> tuple[SnapshotInfo, ...]:
        found = await pages("ec2", "describe_snapshots", "Snapshots", OwnerIds=["self"])
        image_disk = ("Auto-created snapshot for AMI", "Created by CreateImage", "Copied for")
        found = [s for s in found if not (s.get("Description") or "").startswith(image_disk)]
        found.sort(key=lambda s: (s.get("StartTime") is not None, s.get("StartTime")), reverse=True)
        return tuple(
            SnapshotInfo(
                s["SnapshotId"],
                s.get("Description") or "",
                int(s.get("VolumeSize") or 0),
                s["StartTime"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                if s.get("StartTime")
                else "",
            )
            for s in found
        )

    async def images() -> tuple[ImageInfo, ...]:
        found = await pages("ec2", "describe_images", "Images", Owners=["self"])
        named = sorted((i["ImageId"], i.get("Name") or "") for i in found)
        return tuple(ImageInfo(image_id, name) for image_id, name in named)

    async def instance_types() -> tuple[InstanceTypeInfo, ...]:
        if not prices:
            return ()
        found = await pages(
            "ec2",
            "describe_instance_types",
            "InstanceTypes",
            Filters=[{"Name": "instance-type", "Values": sorted(prices)}],
        )
        vcpus = {t["InstanceType"]: int(t["VCpuInfo"]["DefaultVCpus"]) for t in found}
        return tuple(
            InstanceTypeInfo(name, vcpus[name], prices.get(name))
            for name in sorted(vcpus, key=lambda n: (prices.get(n, float("inf")), n))
        )

    async def key_pairs() -> tuple[str, ...]:
        ec2 = await cloud.client("ec2")
        resp = await ec2.describe_key_pairs()
        return tuple(sorted(k["KeyName"] for k in resp.get("KeyPairs") or [] if k.get("KeyName")))

    async def buckets() -> tuple[str, ...]:
        found = await pages("s3", "list_buckets", "Buckets")
        return tuple(sorted(b["Name"] for b in found))

    async def one(
        what: str, operation: str, fetch: Callable[[], Awaitable[tuple[Any, ...]]]
    ) -> tuple[tuple[Any, ...], str]:
        try:
            return await fetch(), ""
        except CLOUD_EXCEPTIONS as exc:
            code = error_code(exc)
            if code in CREDENTIAL_CODES:
                if operation == "ListBuckets":
                    return (), ""
                return (), f"{what}: this account may not call {operation} ({code})"
            return (), f"{what}: {operation} failed ({code or type(exc).__name__})"

    got = await asyncio.gather(
        one("snapshots", "DescribeSnapshots", snapshots),
        one("images", "DescribeImages", images),
        one("instance types", "DescribeInstanceTypes", instance_types),
        one("key pairs", "DescribeKeyPairs", key_pairs),
        one("buckets", "ListBuckets", buckets),
    )
    return ComposeChoices(*(g[0] for g in got), notes=tuple(g[1] for g in got if g[1]))
