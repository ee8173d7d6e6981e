"""The SimpleDB status store (the paper's): one domain per session, one item per job."""

from __future__ import annotations

from awsac_agent import s3layout
from awsac_agent.status import (
    KILL_ATTRIBUTE,
    KILL_REQUESTED,
    LOST,
    STORE_SIMPLEDB,
    TERMINAL,
    JobRecord,
    domain_name,
    item_name,
    requeued,
    select_all_jobs,
    select_updated_since,
    stale_attributes,
    updated_iso,
    utcnow_iso,
)

from ..cloud import Cloud, cloud_errors, error_code
from . import StoreRead
from ._control import delete_keys, list_keys, put_kill_object


class SimpleDBStore:
    """Async reader/writer of a session's SimpleDB domain."""

    kind = STORE_SIMPLEDB

    def __init__(self, cloud: Cloud, session_id: str, bucket: str) -> None:
        self.cloud = cloud
        self.session_id = session_id
        self.bucket = bucket
        self.domain = domain_name(session_id)
        self.problems: list[str] = []
        self._problems: dict[str, str] = {}  # item -> why it could not be read

    async def exists(self) -> bool:
        sdb = await self.cloud.client("sdb")
        async with cloud_errors(f"SimpleDB domain {self.domain}"):
            async for page in sdb.get_paginator("list_domains").paginate():
                if self.domain in (page.get("DomainNames") or []):
                    return True
            return False

    async def read_all(self) -> list[JobRecord]:
        """Every job record (select, paged); [] while the domain does not exist."""
        return (await self.read()).records

    async def read(self, since: str | None = None) -> StoreRead:
        """Every record (``since`` None), or those whose ``updated`` is at or after ``since``
        (one consistent select, paged; the incremental refresh)."""
        sdb = await self.cloud.client("sdb")
        records: dict[int, JobRecord] = {}
        if since is None:
            expression = select_all_jobs(self.session_id)
            self._problems = {}
        else:
            expression = select_updated_since(self.session_id, since)
        pages = sdb.get_paginator("select").paginate(
            SelectExpression=expression, ConsistentRead=True
        )
        async with cloud_errors(f"reading SimpleDB domain {self.domain}"):
            try:
                items = [item async for page in pages for item in page.get("Items") or []]
            except Exception as exc:  # noqa: BLE001 - only the "no domain yet" case is normal
                if error_code(exc) == "NoSuchDomain":
                    self.problems = []
                    self._problems = {}
                    return StoreRead([], True)
                raise
            for item in items:
                name = item.get("Name")
                try:
                    rec = JobRecord.from_attributes(item.get("Attributes") or [], item["Name"])
                except (ValueError, TypeError) as exc:
                    self._problems[str(name)] = (
                        f"item {name!r} of SimpleDB domain {self.domain} is not a "
                        f"job record ({exc}); its job is shown as pending until the agent "
                        "writes it again"
                    )
                    continue
                self._problems.pop(str(name), None)
                records[rec.jobnr] = rec
        self.problems = list(self._problems.values())
        return StoreRead([records[k] for k in sorted(records)], since is None)

    async def request_kill(self, jobnr: int) -> None:
        sdb = await self.cloud.client("sdb")
        async with cloud_errors(f"kill request for job {jobnr}"):
            await sdb.put_attributes(
                DomainName=self.domain,
                ItemName=item_name(jobnr),
                Attributes=[{"Name": KILL_ATTRIBUTE, "Value": KILL_REQUESTED, "Replace": True}],
            )
            await put_kill_object(self.cloud, self.bucket, self.session_id, jobnr)

    async def reset(self) -> bool:
        """Delete a leftover domain of this name (as the paper did), then create it; True if one existed."""
        existed = await self.exists()
        sdb = await self.cloud.client("sdb")
        async with cloud_errors(f"resetting SimpleDB domain {self.domain}"):
            if existed:
                await sdb.delete_domain(DomainName=self.domain)
            await self._clear_control()
            await sdb.create_domain(DomainName=self.domain)
        return existed

    async def _clear_control(self) -> list[str]:
        keys = [
            k
            for k, _, _ in await list_keys(
                self.cloud, self.bucket, s3layout.control_prefix(self.session_id)
            )
        ]
        return await delete_keys(self.cloud, self.bucket, keys) if keys else []

    async def delete_all(self) -> list[str]:
        """Delete the domain and the kill requests; returns what was removed."""
        removed: list[str] = []
        if await self.exists():
            sdb = await self.cloud.client("sdb")
            async with cloud_errors(f"deleting SimpleDB domain {self.domain}"):
                await sdb.delete_domain(DomainName=self.domain)
            removed.append(f"SimpleDB domain {self.domain}")
        async with cloud_errors("deleting kill requests"):
            removed += [f"s3://{self.bucket}/{k}" for k in await self._clear_control()]
        return removed

    async def _get(self, jobnr: int) -> JobRecord | None:
        """Job ``jobnr``'s record (one consistent GetAttributes, not a read of the whole domain)."""
        sdb = await self.cloud.client("sdb")
        async with cloud_errors(f"reading job {jobnr} in SimpleDB domain {self.domain}"):
            try:
                resp = await sdb.get_attributes(
                    DomainName=self.domain, ItemName=item_name(jobnr), ConsistentRead=True
                )
            except Exception as exc:  # noqa: BLE001 - only the "no domain yet" case is normal
                if error_code(exc) == "NoSuchDomain":
                    return None
                raise
        attrs = resp.get("Attributes") or []
        try:
            return JobRecord.from_attributes(attrs, item_name(jobnr)) if attrs else None
        except (ValueError, TypeError):
            return None  # unreadable: overwritten below (read_all names it in the notices)

    async def mark_lost(self, jobnr: int, reason: str, ended: str | None = None) -> bool:
        """Set job ``jobnr`` to lost unless it has reached a terminal status meanwhile."""
        sdb = await self.cloud.client("sdb")
        current = await self._get(jobnr)
        if current is not None and current.status in TERMINAL:
            return False
        attrs = [
            {"Name": "status", "Value": LOST, "Replace": True},
            {"Name": "error", "Value": reason, "Replace": True},
            {"Name": "jobnr", "Value": str(jobnr), "Replace": True},
            {
                "Name": "runendtime",
                "Value": (current and current.runendtime) or ended or utcnow_iso(),
                "Replace": True,
            },
            {"Name": "updated", "Value": updated_iso(), "Replace": True},
        ]
        kw = {}
        if current is not None:
            kw["Expected"] = {"Name": "status", "Value": current.status, "Exists": True}
        async with cloud_errors(f"marking job {jobnr} lost"):
            try:
                await sdb.put_attributes(
                    DomainName=self.domain, ItemName=item_name(jobnr), Attributes=attrs, **kw
                )
            except Exception as exc:  # noqa: BLE001
                if error_code(exc) in ("ConditionalCheckFailed", "AttributeDoesNotExist"):
                    return False
                raise
        return True

    async def put_pending(self, records: list[JobRecord]) -> None:
        """The items of a new session, 25 to a BatchPutAttributes (SimpleDB's limit), 8 at a time."""
        import asyncio

        sdb = await self.cloud.client("sdb")
        stamp = updated_iso()
        sem = asyncio.Semaphore(8)

        async def batch(chunk: list[JobRecord]) -> None:
            items = [
                {
                    "Name": item_name(r.jobnr),
                    "Attributes": [
                        {"Name": k, "Value": v, "Replace": True}
                        for k, v in sorted(r.with_(updated=stamp).to_attributes().items())
                    ],
                }
                for r in chunk
            ]
            async with sem:
                await sdb.batch_put_attributes(DomainName=self.domain, Items=items)

        async with cloud_errors(f"creating the job items of SimpleDB domain {self.domain}"):
            await asyncio.gather(*(batch(records[i : i + 25]) for i in range(0, len(records), 25)))

    async def requeue(self, record: JobRecord) -> JobRecord | None:
        """Put job ``record`` back to pending as its next attempt (a retry), unless its status
        changed since ``record`` was read (then None). The ended attempt goes into history.

        The ended attempt's attributes go first (conditional on its status, which no agent
        claims), then the pending record (same condition): a queue agent can claim the job only
        once it is pending, so its claim never loses an attribute to this retry."""
        sdb = await self.cloud.client("sdb")
        new = requeued(record)
        expected = {"Name": "status", "Value": record.status, "Exists": True}
        item = item_name(record.jobnr)
        async with cloud_errors(f"re-queueing job {record.jobnr}"):
            try:
                stale = {k: v for k, v in stale_attributes(record, new).items() if k != "status"}
                if stale:
                    await sdb.delete_attributes(
                        DomainName=self.domain,
                        ItemName=item,
                        Attributes=[{"Name": k, "Value": v} for k, v in stale.items()],
                        Expected=expected,
                    )
                await sdb.put_attributes(
                    DomainName=self.domain,
                    ItemName=item,
                    Attributes=[
                        {"Name": k, "Value": v, "Replace": True}
                        for k, v in sorted(new.to_attributes().items())
                    ],
                    Expected=expected,
                )
            except Exception as exc:  # noqa: BLE001
                if error_code(exc) in ("ConditionalCheckFailed", "AttributeDoesNotExist"):
                    return None
                raise
            # the kill request's mirror under control/ belonged to the ended attempt
            s3 = await self.cloud.client("s3")
            await s3.delete_object(
                Bucket=self.bucket, Key=s3layout.kill_key(self.session_id, record.jobnr)
            )
        return new
