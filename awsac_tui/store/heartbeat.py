"""The agents' heartbeats (one object per instance, ``status.Heartbeat``): read by the client to
tell a silent agent on a running instance from a slow job. The same for both store kinds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from awsac_agent import s3layout
from awsac_agent.status import Heartbeat

from ..cloud import Cloud, cloud_errors, error_code


@dataclass(frozen=True)
class HeartbeatListing:
    """One listing of ``heartbeat/``: each instance's last beat by the server's clock, and the
    server's time of the answer (its Date header), so that no clock of ours or the agents'
    decides how old a beat is."""

    server_time: datetime
    beats: dict[str, datetime]  # instance id -> LastModified of its heartbeat object

    def age(self, instance_id: str) -> float | None:
        last = self.beats.get(instance_id)
        return None if last is None else (self.server_time - last).total_seconds()


def _server_time(page: dict, fallback: datetime) -> datetime:
    headers = (page.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    try:
        return parsedate_to_datetime(headers["date"]).astimezone(UTC)
    except (KeyError, TypeError, ValueError):
        return fallback


async def list_heartbeats(
    cloud: Cloud, bucket: str, session_id: str, now: datetime
) -> HeartbeatListing:
    """Every heartbeat of the session with one (paged) ListObjectsV2 of its ``heartbeat/``."""
    prefix = s3layout.heartbeat_prefix(session_id)
    s3 = await cloud.client("s3")
    beats: dict[str, datetime] = {}
    server = now
    async with cloud_errors(f"listing s3://{bucket}/{prefix}"):
        async for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix
        ):
            server = _server_time(page, server)
            for obj in page.get("Contents") or []:
                name = obj["Key"][len(prefix) :]
                if name.endswith(".json") and isinstance(obj.get("LastModified"), datetime):
                    beats[name[: -len(".json")]] = obj["LastModified"]
    return HeartbeatListing(server, beats)


async def read_heartbeat(
    cloud: Cloud, bucket: str, session_id: str, instance_id: str
) -> Heartbeat | None:
    """One instance's heartbeat (its interval and what the agent said it was doing)."""
    s3 = await cloud.client("s3")
    key = s3layout.heartbeat_key(session_id, instance_id)
    async with cloud_errors(f"reading s3://{bucket}/{key}"):
        try:
            resp = await s3.get_object(Bucket=bucket, Key=key)
        except Exception as exc:  # noqa: BLE001 - a beat that is gone is no beat
            if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        async with resp["Body"] as body:
            data = await body.read()
    try:
        return Heartbeat.from_json(data.decode("utf-8"))
    except (ValueError, TypeError, KeyError):
        return None
