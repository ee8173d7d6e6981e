"""The S3-only status store: one JSON object per job under ``session_id/status/``."""

from __future__ import annotations

import asyncio
import dataclasses

from awsac_agent import s3layout
from awsac_agent.s3objects import EtagCache
from awsac_agent.status import (
    LOST,
    STORE_S3,
    TERMINAL,
    JobRecord,
    requeued,
    updated_iso,
    utcnow_iso,
)

from ..cloud import Cloud, cloud_errors, error_code
from . import StoreRead
from ._control import delete_keys, list_keys, put_kill_object


class S3Store:
    """Async reader/writer of a session's status objects; re-reads only objects whose ETag changed."""

    kind = STORE_S3

    def __init__(self, cloud: Cloud, session_id: str, bucket: str) -> None:
        self.cloud = cloud
        self.session_id = session_id
        self.bucket = bucket
        self.prefix = s3layout.status_prefix(session_id)
        self._cache: EtagCache[JobRecord | None] = EtagCache()
        self._unreadable: dict[str, str] = {}  # key -> why its record could not be read
        self.problems: list[str] = []
        self.fetches = 0  # objects downloaded so far (tests check the ETag cache with it)

    async def exists(self) -> bool:
        async with cloud_errors(f"listing s3://{self.bucket}/{self.prefix}"):
            return bool(await list_keys(self.cloud, self.bucket, self.prefix))

    async def _fetch(self, key: str) -> JobRecord | None:
        s3 = await self.cloud.client("s3")
        try:
            resp = await s3.get_object(Bucket=self.bucket, Key=key)
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        async with resp["Body"] as body:
            data = await body.read()
        self.fetches += 1
        try:
            record = JobRecord.from_json(data.decode("utf-8"))
        except (ValueError, TypeError) as exc:
            self._unreadable[key] = (
                f"s3://{self.bucket}/{key} is not a job record ({exc}); its job is shown "
                "as pending until the agent writes it again"
            )
            return None
        self._unreadable.pop(key, None)
        return record

    async def read_all(self) -> list[JobRecord]:
        return (await self.read()).records

    async def read(self, since: str | None = None) -> StoreRead:
        """Every record: one listing (S3 cannot list by time, so ``since`` is not used), then
        only the objects whose ETag changed are fetched; unchanged records are the same objects
        as in the read before."""
        async with cloud_errors(f"reading s3://{self.bucket}/{self.prefix}"):
            listing = await list_keys(self.cloud, self.bucket, self.prefix)
            etags = {k: etag for k, etag, _ in listing}
            changed, gone = self._cache.sync(etags.items())
            sem = asyncio.Semaphore(16)

            async def one(key: str) -> None:
                async with sem:
                    self._cache.put(key, etags[key], await self._fetch(key))

            await asyncio.gather(*(one(k) for k in changed))
        for k in gone:
            self._unreadable.pop(k, None)
        self.problems = list(self._unreadable.values())
        records = {r.jobnr: r for r in self._cache.values() if r is not None}
        return StoreRead([records[k] for k in sorted(records)], True)

    async def request_kill(self, jobnr: int) -> None:
        async with cloud_errors(f"kill request for job {jobnr}"):
            await put_kill_object(self.cloud, self.bucket, self.session_id, jobnr)

    async def _delete_prefixes(self) -> list[str]:
        keys: list[str] = []
        for p in (self.prefix, s3layout.control_prefix(self.session_id)):
            keys += [k for k, _, _ in await list_keys(self.cloud, self.bucket, p)]
        return await delete_keys(self.cloud, self.bucket, keys) if keys else []

    async def reset(self) -> bool:
        """Delete leftover status and control objects of this session; True if there were any."""
        async with cloud_errors(f"resetting s3://{self.bucket}/{self.prefix}"):
            removed = await self._delete_prefixes()
        self._cache.clear()
        return bool(removed)

    async def delete_all(self) -> list[str]:
        async with cloud_errors(f"deleting s3://{self.bucket}/{self.prefix}"):
            removed = await self._delete_prefixes()
        self._cache.clear()
        return [f"s3://{self.bucket}/{k}" for k in removed]

    async def mark_lost(self, jobnr: int, reason: str, ended: str | None = None) -> bool:
        key = s3layout.status_key(self.session_id, jobnr)
        async with cloud_errors(f"marking job {jobnr} lost"):
            current = await self._fetch(key)
            if current is not None and current.status in TERMINAL:
                return False
            rec = current or JobRecord(jobnr=jobnr)
            rec = dataclasses.replace(
                rec,
                status=LOST,
                error=reason,
                runendtime=rec.runendtime or ended or utcnow_iso(),
                updated=updated_iso(),
            )
            s3 = await self.cloud.client("s3")
            await s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=rec.to_json().encode(),
                ContentType="application/json",
            )
        self._cache.drop(key)
        return True

    async def put_pending(self, records: list[JobRecord]) -> None:
        """One status object per job (16 PUTs at a time)."""
        s3 = await self.cloud.client("s3")
        sem = asyncio.Semaphore(16)
        stamp = updated_iso()

        async def one(rec: JobRecord) -> None:
            async with sem:
                await s3.put_object(
                    Bucket=self.bucket,
                    Key=s3layout.status_key(self.session_id, rec.jobnr),
                    Body=rec.with_(updated=stamp).to_json().encode(),
                    ContentType="application/json",
                )

        async with cloud_errors(
            f"creating the status objects under s3://{self.bucket}/{self.prefix}"
        ):
            await asyncio.gather(*(one(r) for r in records))

    async def requeue(self, record: JobRecord) -> JobRecord | None:
        """Put job ``record`` back to pending as its next attempt (a retry), unless its status
        changed since ``record`` was read (then None): the status object, the queue's re-queue
        marker (agents in queue mode claim that attempt), and no stale kill request."""
        key = s3layout.status_key(self.session_id, record.jobnr)
        s3 = await self.cloud.client("s3")
        async with cloud_errors(f"re-queueing job {record.jobnr}"):
            current = await self._fetch(key)
            if current is not None and current.status != record.status:
                return None
            new = requeued(record)
            await s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=new.to_json().encode(),
                ContentType="application/json",
            )
            await s3.put_object(
                Bucket=self.bucket,
                Key=s3layout.requeue_key(self.session_id, new.jobnr, new.attempt),
                Body=b"",
            )
            await s3.delete_object(
                Bucket=self.bucket, Key=s3layout.kill_key(self.session_id, new.jobnr)
            )
        self._cache.drop(key)
        return new
