"""Clean up a session: remove what it left (asking the cloud, not the record) and say what."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from awsac_agent import s3layout
from awsac_agent.errors import FormatError

from .. import records
from ..cloud import Cloud, cloud_errors, error_code, translate
from ..records import SessionRecord
from ..resources import describe_instances, describe_volumes, list_objects
from ..store._control import delete_keys
from .common import Confirm, Say, ask, cloud_for, quiet, store_for, wait_until

CLEANUP_KINDS = ("instances", "volumes", "store", "objects")

GONE_STATES = ("shutting-down", "terminated")


async def delete_objects(cloud: Cloud, record: SessionRecord, only_prefix: str | None) -> list[str]:
    prefix = only_prefix or s3layout.prefix(record.session_id)
    keys = [k for k, _, _ in await list_objects(cloud, record.bucket, prefix)]
    async with cloud_errors(f"deleting s3://{record.bucket}/{prefix}"):
        done = await delete_keys(cloud, record.bucket, keys) if keys else []
    return [f"s3://{record.bucket}/{k}" for k in done]


async def cleanup(
    record: SessionRecord,
    kinds: Iterable[str] = CLEANUP_KINDS,
    *,
    confirm: Confirm | None = None,
    say: Say = quiet,
    cloud: Cloud | None = None,
    timeout: float = 300.0,
) -> list[str]:
    """Remove what the session left (asking the cloud, not the record); returns each thing removed."""
    kinds = set(kinds)
    bad = kinds - set(CLEANUP_KINDS)
    if bad:
        raise FormatError(f"unknown cleanup kinds {sorted(bad)} (use {', '.join(CLEANUP_KINDS)})")
    removed: list[str] = []

    def note(text: str) -> None:
        removed.append(text)
        say(text)

    sid = record.session_id
    async with cloud_for(record, cloud) as c:
        ec2 = await c.client("ec2")
        if "instances" in kinds:
            live = [
                i for i in await describe_instances(c, sid) if i["State"]["Name"] != "terminated"
            ]
            ids = [i["InstanceId"] for i in live]
            if ids and await ask(
                confirm, f"terminate {len(ids)} instance(s) of {sid} ({', '.join(ids)})?"
            ):
                async with cloud_errors("TerminateInstances"):
                    await ec2.terminate_instances(InstanceIds=ids)

                async def all_terminated() -> bool:
                    now = {
                        i["InstanceId"]: i["State"]["Name"]
                        for i in await describe_instances(c, sid)
                    }
                    return all(now.get(i, "terminated") == "terminated" for i in ids)

                await wait_until(
                    all_terminated, timeout, f"instances {', '.join(ids)} to terminate"
                )
                for i in ids:
                    note(f"terminated instance {i}")
        if "volumes" in kinds:
            vols = [
                v
                for v in await describe_volumes(c, sid)
                if v["State"] not in ("deleted", "deleting")
            ]
            vids = [v["VolumeId"] for v in vols]
            if vids and await ask(
                confirm, f"delete {len(vids)} volume(s) of {sid} ({', '.join(vids)})?"
            ):
                detach_problems: list[str] = []
                for v in vols:
                    if v.get("Attachments"):
                        try:
                            await ec2.detach_volume(VolumeId=v["VolumeId"], Force=True)
                        except Exception as exc:  # noqa: BLE001 - said, and named if the wait times out
                            code = error_code(exc)
                            if not code.startswith(("IncorrectState", "InvalidVolume.NotFound")):
                                problem = f"DetachVolume {v['VolumeId']}: {translate(exc)}"
                                detach_problems.append(problem)
                                say(problem)

                async def detached() -> bool:
                    now = {v["VolumeId"]: v for v in await describe_volumes(c, sid)}
                    return all(not now.get(x, {}).get("Attachments") for x in vids)

                await wait_until(
                    detached,
                    timeout,
                    "volumes to detach"
                    + (f" ({'; '.join(detach_problems)})" if detach_problems else ""),
                )
                for vid in vids:
                    try:
                        await ec2.delete_volume(VolumeId=vid)
                    except Exception as exc:  # noqa: BLE001
                        if not error_code(exc).startswith("InvalidVolume.NotFound"):
                            async with cloud_errors(f"DeleteVolume {vid}"):
                                raise

                async def volumes_gone() -> bool:
                    now = await describe_volumes(c, sid)
                    return not [v for v in now if v["VolumeId"] in vids and v["State"] != "deleted"]

                await wait_until(volumes_gone, timeout, "volumes to be deleted")
                for vid in vids:
                    note(f"deleted volume {vid}")
        if "store" in kinds:
            store = store_for(record, c)
            if await store.exists() and await ask(
                confirm, f"delete status store ({store.kind}) {sid}?"
            ):
                for item in await store.delete_all():
                    note(f"deleted {item}")
        if "objects" in kinds:
            prefix = s3layout.prefix(sid)
            keys = await list_objects(c, record.bucket, prefix)
            if keys and await ask(confirm, f"delete S3 objects {record.bucket}/{prefix}* ?"):
                for item in await delete_objects(c, record, None):
                    note(f"deleted {item}")
    if set(CLEANUP_KINDS) <= kinds and record.path and records.record_path(sid).exists():
        await asyncio.to_thread(records.save_record, record.with_(state="cleaned"))
    return removed
