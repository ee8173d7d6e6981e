"""One RunInstances of a session (its first reservation, or a retry's): the instance type and
its fallbacks tried in order, the quota read first, capacity refusals made one clear error."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from awsac_agent.bootstrap import stock_userdata
from awsac_agent.userdata import K_INSTANCES, build_userdata, parse_userdata

from ..cloud import Cloud, cloud_errors
from .capacity import (
    Quota,
    Refusal,
    capacity_error,
    fits,
    is_capacity_refusal,
    over_quota,
    read_quota,
    refusal_of,
)
from .common import Say, quiet
from .plan import Fleet, instance_vcpus


@dataclass(frozen=True)
class Launched:
    """What one RunInstances gave."""

    reservation_id: str
    instance_type: str
    vcpus: int
    cores_per_instance: int
    n_asked: int
    instance_ids: tuple[str, ...]
    userdata: str

    @property
    def n_instances(self) -> int:
        return len(self.instance_ids)


def rewrite_userdata(text: str, **changes: Any) -> str:
    """``text`` (the paper's string, or a stock image's bootstrap carrying it) with the fields
    in ``changes`` replaced: ``cores_per_instance`` and any user-data extra key."""
    ud = parse_userdata(text)
    if ud is None:
        raise ValueError("not an awsac user-data string")
    cpi = changes.pop("cores_per_instance", ud.cores_per_instance)
    extra = dict(ud.extra)
    for key, value in changes.items():
        if value is None:
            extra.pop(key, None)
        else:
            extra[key] = str(value)
    new = dataclasses.replace(ud, cores_per_instance=cpi, extra=extra)
    return stock_userdata(new) if text.lstrip().startswith("#!") else build_userdata(new)


async def precheck(
    cloud: Cloud,
    types: Sequence[str],
    fleet: Fleet,
) -> Quota | None:
    """The account's quota, read before anything is created; CapacityError when no type of
    ``types`` can fit it (static: every instance; queue: at least one)."""
    quota = await read_quota(cloud)
    if quota is None:
        return None
    refusals: list[Refusal] = []
    for instance_type in types:
        vcpus = await instance_vcpus(cloud, instance_type, "session.toml")
        n, _ = fleet.size(vcpus)
        room = fits(quota, n, vcpus)
        if room >= 1 and (fleet.queue or room >= n):
            return quota
        refusals.append(over_quota(instance_type, n, vcpus, quota))
    raise capacity_error(refusals, quota, queue=fleet.queue)


async def launch(
    cloud: Cloud,
    run_args: dict[str, Any],
    *,
    types: Sequence[str],
    fleet: Fleet,
    token: Callable[[int], str],
    say: Say = quiet,
    quota: Quota | None = None,
    read_the_quota: bool = True,
) -> Launched:
    """RunInstances for ``fleet.n_jobs`` jobs with ``run_args`` (ImageId, UserData, tags, ...), on the
    first of ``types`` that launches. Static: exactly the paper's count for that type (all or
    nothing). Queue: up to the cap, at least one (MinCount 1), fewer when the quota says so.
    ``token(i)`` is the ClientToken of the i-th try (a retried call with the same token returns
    the same reservation). Raises CapacityError naming every refusal when no type launches.
    """
    queue = fleet.queue
    if quota is None and read_the_quota:
        quota = await read_quota(cloud)
    refusals: list[Refusal] = []
    ec2 = await cloud.client("ec2")
    for i, instance_type in enumerate(types):
        vcpus = await instance_vcpus(cloud, instance_type, "session.toml")
        n, cpi = fleet.size(vcpus)
        room = fits(quota, n, vcpus)
        if quota is not None and (room < 1 or (room < n and not queue)):
            refusals.append(over_quota(instance_type, n, vcpus, quota))
            continue
        if queue and room < n:
            say(f"the quota ({quota.text() if quota else '?'}) holds {room} of {n} instance(s)")
            n = room
        userdata = rewrite_userdata(
            run_args["UserData"], cores_per_instance=cpi, **{K_INSTANCES: n}
        )
        args = {
            **run_args,
            "InstanceType": instance_type,
            "MinCount": 1 if queue else n,
            "MaxCount": n,
            "UserData": userdata,
            "ClientToken": token(i),
        }
        try:
            async with cloud_errors("RunInstances"):
                resp = await ec2.run_instances(**args)
        except Exception as exc:  # noqa: BLE001 - capacity refusals go on to the next type
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            if not (is_capacity_refusal(cause) or is_capacity_refusal(exc)):
                raise
            refusal = refusal_of(cause, instance_type, n, vcpus)
            refusals.append(refusal)
            more = f"; trying {types[i + 1]}" if i + 1 < len(types) else ""
            say(f"RunInstances refused {refusal.text()}{more}")
            continue
        ids = tuple(str(x["InstanceId"]) for x in resp.get("Instances") or [])
        if queue and len(ids) < n:
            say(f"launched {len(ids)} of {n} instance(s) of {instance_type} (capacity)")
        return Launched(
            reservation_id=str(resp.get("ReservationId") or ""),
            instance_type=instance_type,
            vcpus=vcpus,
            cores_per_instance=cpi,
            n_asked=n,
            instance_ids=ids,
            userdata=userdata,
        )
    raise capacity_error(refusals, quota, queue=fleet.queue)
