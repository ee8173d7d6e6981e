"""The session's tagged resources as the cloud reports them: instances and volumes (paginated
Describe* filtered by the session tag), the objects under an S3 prefix, and the trackers that
keep them up to date by asking only for what can have changed.

Below both the verbs (session/) and the Monitor, which read them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from awsac_agent.sessionid import session_tag_filter

from .cloud import Cloud, cloud_errors, error_code
from .store._control import list_keys
from .views import INSTANCE_GONE, INSTANCE_UP

# Instance states other than running: an incremental refresh asks only for these (a running
# instance that stays running does not change anything the views show).
NOT_RUNNING = ("pending", "shutting-down", "terminated", "stopping", "stopped")
# Volume states other than in-use (an attached volume's view does not change while attached).
NOT_IN_USE = ("creating", "available", "deleting", "deleted", "error")
# EC2 answers FilterLimitExceeded above 200 filter values in one call (all filters together).
MAX_FILTER_VALUES = 200

Resource = dict[str, Any]


async def describe(
    cloud: Cloud,
    operation: str,
    filters: list[dict[str, Any]],
    pick: Callable[[dict[str, Any]], Iterable[Any]],
) -> list[Resource]:
    """Every resource of a paginated EC2 Describe* call with ``filters``."""
    ec2 = await cloud.client("ec2")
    out: list[Resource] = []
    async with cloud_errors(operation):
        pag = ec2.get_paginator(operation)
        async for page in pag.paginate(Filters=filters):
            out.extend(pick(page))
    return out


def _pick_instances(page: dict[str, Any]) -> Iterable[Resource]:
    return (i for res in page.get("Reservations") or [] for i in res.get("Instances") or [])


def _pick_volumes(page: dict[str, Any]) -> Iterable[Resource]:
    return page.get("Volumes") or []


async def describe_instances(cloud: Cloud, session_id: str) -> list[Resource]:
    """Every instance tagged with the session (paginated)."""
    return await describe(
        cloud, "describe_instances", [session_tag_filter(session_id)], _pick_instances
    )


async def describe_volumes(cloud: Cloud, session_id: str) -> list[Resource]:
    """Every volume tagged with the session (paginated)."""
    return await describe(
        cloud, "describe_volumes", [session_tag_filter(session_id)], _pick_volumes
    )


async def terminate_instances(cloud: Cloud, instance_ids: Sequence[str], why: str) -> list[str]:
    """TerminateInstances for ``instance_ids`` (idempotent on EC2); returns their new states.

    The one place where the client ends instances: the terminate verb, the lease sweep and the
    monitor's silent-agent rule.
    """
    if not instance_ids:
        return []
    ec2 = await cloud.client("ec2")
    async with cloud_errors(f"TerminateInstances {', '.join(instance_ids)} ({why})"):
        resp = await ec2.terminate_instances(InstanceIds=list(instance_ids))
    return [t["CurrentState"]["Name"] for t in resp.get("TerminatingInstances") or []]


async def list_objects(cloud: Cloud, bucket: str, prefix: str) -> list[tuple[str, str, int]]:
    """(key, ETag, size) of every object under ``prefix``."""
    async with cloud_errors(f"listing s3://{bucket}/{prefix}"):
        return await list_keys(cloud, bucket, prefix)


def state_of(instance: Resource) -> str:
    return (instance.get("State") or {}).get("Name", "unknown")


def state_reason(instance: Resource) -> str | None:
    """EC2's StateReason of an instance in words (its message, else its code)."""
    reason = instance.get("StateReason") or {}
    return reason.get("Message") or reason.get("Code") or None


_TRANSITION_TIME = re.compile(r"\((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?:GMT|UTC)\)")


def transition_time(instance: Resource) -> datetime | None:
    """When the instance last changed state, from StateTransitionReason ("User initiated
    (2026-01-01 12:00:00 GMT)"); None when EC2 does not say."""
    m = _TRANSITION_TIME.search(instance.get("StateTransitionReason") or "")
    if not m:
        return None
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def _chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def _same(a: Resource | None, b: Resource | None, keys: tuple[str, ...]) -> bool:
    if a is None or b is None:
        return a is b
    return all(a.get(k) == b.get(k) for k in keys)


# What an instance's or a volume's view is made of: only a change of these is a change.
INSTANCE_KEYS = (
    "State",
    "StateReason",
    "StateTransitionReason",
    "PublicDnsName",
    "Placement",
    "InstanceType",
    "AmiLaunchIndex",
    "LaunchTime",
)
VOLUME_KEYS = ("State", "Attachments", "SnapshotId", "Size")


@dataclass
class InstanceTracker:
    """The session's instances, kept current by asking EC2 only for what can have changed.

    A full read describes every instance with the session tag. An incremental one asks for the
    instances that are not running (``instance-state-name``): new ones are pending, going ones
    shutting-down or terminated. While the session has terminated instances and few others,
    it asks for those others by ``instance-id`` instead, so instances known to be terminated
    are not asked for again (new instances then show at the next full read, or at once when a
    job record names them: ``hint``). A known instance that was not running and is absent
    from the answer has started (or vanished): it is described by id.
    """

    session_id: str
    known: dict[str, Resource] = field(default_factory=dict)
    first_seen_gone: dict[str, datetime] = field(default_factory=dict)

    async def refresh(
        self, cloud: Cloud, full: bool, now: datetime, hint: Iterable[str] = ()
    ) -> set[str]:
        """Bring ``known`` up to date; returns the ids whose view may have changed."""
        tag = session_tag_filter(self.session_id)
        if full or not self.known:
            got = await describe(cloud, "describe_instances", [tag], _pick_instances)
            new = {i["InstanceId"]: i for i in got}
            changed = {
                k
                for k in new.keys() | self.known.keys()
                if not _same(new.get(k), self.known.get(k), INSTANCE_KEYS)
            }
            self.known = new
            self._note_gone(now)
            return changed
        alive = [k for k, i in self.known.items() if state_of(i) != "terminated"]
        hinted = [h for h in dict.fromkeys(hint) if h not in self.known]
        states = {"Name": "instance-state-name", "Values": list(NOT_RUNNING)}
        ids = alive + hinted
        if len(alive) < len(self.known) and 0 < len(ids) <= MAX_FILTER_VALUES - len(NOT_RUNNING):
            filters = [{"Name": "instance-id", "Values": ids}, states]
        else:  # hinted instances that are not running are in this answer, the others below
            filters = [tag, states]
        got = {
            i["InstanceId"]: i
            for i in await describe(cloud, "describe_instances", filters, _pick_instances)
        }
        changed: set[str] = set()
        for iid, inst in got.items():
            old = self.known.get(iid)
            if old is not None and state_of(old) == "terminated":
                continue  # final: nothing about it changes any more
            if not _same(old, inst, INSTANCE_KEYS):
                self.known[iid] = inst
                changed.add(iid)
        # not running before, not in the answer now: started (or vanished); hinted ones unseen
        unsure = [k for k in alive if k not in got and state_of(self.known[k]) != "running"] + [
            h for h in hinted if h not in got
        ]
        if unsure:
            found: dict[str, Resource] = {}
            for chunk in _chunks(unsure, MAX_FILTER_VALUES - 1):
                for i in await describe(
                    cloud,
                    "describe_instances",
                    [tag, {"Name": "instance-id", "Values": chunk}],
                    _pick_instances,
                ):
                    found[i["InstanceId"]] = i
            for iid in unsure:
                inst = found.get(iid)
                if inst is None:
                    if self.known.pop(iid, None) is not None:
                        changed.add(iid)
                elif not _same(self.known.get(iid), inst, INSTANCE_KEYS):
                    self.known[iid] = inst
                    changed.add(iid)
        self._note_gone(now)
        return changed

    async def learn(self, cloud: Cloud, ids: Iterable[str], now: datetime) -> set[str]:
        """Describe instances a job record has just named (a new reservation), read after the
        store: only the live ones are taken now (one that is already gone is taken at the next
        refresh, before the store, so that the lost rule sees it in the right order)."""
        todo = [i for i in dict.fromkeys(ids) if i not in self.known]
        changed: set[str] = set()
        tag = session_tag_filter(self.session_id)
        for chunk in _chunks(todo, MAX_FILTER_VALUES - 1):
            for inst in await describe(
                cloud,
                "describe_instances",
                [tag, {"Name": "instance-id", "Values": chunk}],
                _pick_instances,
            ):
                if state_of(inst) in INSTANCE_UP:
                    self.known[inst["InstanceId"]] = inst
                    changed.add(inst["InstanceId"])
        return changed

    def _note_gone(self, now: datetime) -> None:
        for iid, inst in self.known.items():
            if state_of(inst) in INSTANCE_GONE:
                self.first_seen_gone.setdefault(iid, now)

    def ended_at(self, iid: str) -> datetime | None:
        """When the instance went: EC2's transition time, else when we first saw it going."""
        inst = self.known.get(iid)
        if inst is None or state_of(inst) not in (*INSTANCE_GONE, "stopping", "stopped"):
            return None
        return transition_time(inst) or self.first_seen_gone.get(iid)


@dataclass
class VolumeTracker:
    """The session's volumes, kept current like the instances, in two steps per refresh.

    ``base``: a full read describes every volume with the session tag; an incremental one asks
    for the volumes that are not in use (``status``). An attached volume's view changes only
    when it is detached (then it is available, in that answer) or deleted with its instance.
    ``follow``: the volumes of ``watch`` instances (new, changed, tearing down, or starting a
    job whose snapshot has no volume there yet) are described by ``attachment.instance-id``,
    and a known volume that was not in use and is absent from the answer by ``volume-id``.
    """

    session_id: str
    known: dict[str, Resource] = field(default_factory=dict)
    _seen: set[str] = field(default_factory=set)  # ids in the last base answer
    _full: bool = False

    async def base(self, cloud: Cloud, full: bool) -> set[str]:
        tag = session_tag_filter(self.session_id)
        self._full = full or not self.known
        if self._full:
            got = await describe(cloud, "describe_volumes", [tag], _pick_volumes)
            new = {v["VolumeId"]: v for v in got}
            changed = {
                k
                for k in new.keys() | self.known.keys()
                if not _same(new.get(k), self.known.get(k), VOLUME_KEYS)
            }
            self.known = new
            self._seen = set(new)
            return changed
        states = {"Name": "status", "Values": list(NOT_IN_USE)}
        got = {
            v["VolumeId"]: v
            for v in await describe(cloud, "describe_volumes", [tag, states], _pick_volumes)
        }
        changed: set[str] = set()
        for vid, vol in got.items():
            if not _same(self.known.get(vid), vol, VOLUME_KEYS):
                self.known[vid] = vol
                changed.add(vid)
        unsure = [k for k, v in self.known.items() if k not in got and v.get("State") != "in-use"]
        self._seen = set(got)
        if unsure:  # was not in use, is not in the answer: attached now, or deleted
            changed |= await self._describe_ids(cloud, "volume-id", unsure, unsure)
        return changed

    async def follow(self, cloud: Cloud, watch: Iterable[str]) -> set[str]:
        """Describe the volumes attached to ``watch`` instances (after ``base``)."""
        if self._full:
            return set()
        watched = sorted(set(watch))
        if not watched:
            return set()
        mine = [
            vid
            for vid, v in self.known.items()
            if _attached_to(v) in watched and vid not in self._seen
        ]
        return await self._describe_ids(cloud, "attachment.instance-id", watched, mine)

    async def _describe_ids(
        self, cloud: Cloud, name: str, values: list[str], expected: list[str]
    ) -> set[str]:
        """Describe by filter ``name`` in ``values``; ``expected`` known ids missing from the
        answer are gone (deleted)."""
        tag = session_tag_filter(self.session_id)
        found: dict[str, Resource] = {}
        for chunk in _chunks(values, MAX_FILTER_VALUES - 1):
            for v in await describe(
                cloud, "describe_volumes", [tag, {"Name": name, "Values": chunk}], _pick_volumes
            ):
                found[v["VolumeId"]] = v
        changed: set[str] = set()
        for vid in expected:
            if vid not in found and self.known.pop(vid, None) is not None:
                changed.add(vid)
        for vid, vol in found.items():
            if not _same(self.known.get(vid), vol, VOLUME_KEYS):
                self.known[vid] = vol
                changed.add(vid)
        return changed

    def on_instance(self, iid: str) -> list[Resource]:
        return [v for v in self.known.values() if _attached_to(v) == iid]


def _attached_to(volume: Resource) -> str | None:
    att = (volume.get("Attachments") or [{}])[0]
    return att.get("InstanceId")


async def list_uploads(cloud: Cloud, bucket: str, prefix: str) -> list[tuple[str, str, int]]:
    """(key, upload id, bytes its parts hold) of every unfinished multipart upload under
    ``prefix`` (S3 bills their parts until they are completed or aborted)."""
    s3 = await cloud.client("s3")
    out: list[tuple[str, str, int]] = []
    async with cloud_errors(f"listing the unfinished uploads of s3://{bucket}/{prefix}"):
        try:
            pages = s3.get_paginator("list_multipart_uploads").paginate(
                Bucket=bucket, Prefix=prefix
            )
            uploads = [u async for page in pages for u in page.get("Uploads") or []]
        except Exception as exc:  # noqa: BLE001 - a missing bucket holds no uploads
            if error_code(exc) == "NoSuchBucket":
                return []
            raise
        for up in uploads:
            size = 0
            parts = s3.get_paginator("list_parts").paginate(
                Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"]
            )
            try:
                async for page in parts:
                    size += sum(int(p.get("Size", 0)) for p in page.get("Parts") or [])
            except Exception as exc:  # noqa: BLE001 - finished or aborted meanwhile
                if error_code(exc) != "NoSuchUpload":
                    raise
                continue
            out.append((up["Key"], up["UploadId"], size))
    return out
