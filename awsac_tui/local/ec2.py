"""EC2 in the local cloud as AWS documents it, where moto differs: images, quotas, EBS states, errors.

``install()`` patches moto's EC2 models and responses inside the server process, before the
server's own hooks (runner, idempotent ClientToken) wrap them. ``SETTINGS`` holds what the owner
can change through the ``/_awsac/ec2`` side endpoint: the vCPU quota, the instance limit, the
capacity per instance type and how long volumes stay ``creating`` and snapshots ``pending``.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_EBS_DELAY = 0.2  # seconds a new volume is `creating` and a new snapshot `pending`
LAUNCHED_STATES = ("pending", "running")  # what counts against the quota, as on EC2
MIN_VOLUME_GIB = 1
MAX_VOLUME_GIB = 16384


@dataclass
class EC2Settings:
    """The local cloud's account limits and EBS timing (None: no limit)."""

    vcpu_quota: int | None = None  # On-Demand vCPUs of running and pending instances
    instance_limit: int | None = None  # instances running or pending at once
    capacity: dict[str, int] = field(default_factory=dict)  # instance type -> at most at once
    ebs_delay: float = DEFAULT_EBS_DELAY

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def update(self, payload: dict[str, Any]) -> None:
        """Apply the keys present in ``payload``; ValueError names a bad value."""
        for key in ("vcpu_quota", "instance_limit"):
            if key in payload:
                value = payload[key]
                if value is not None and (not isinstance(value, int) or value < 0):
                    raise ValueError(f"{key} must be a whole number >= 0 or null")
                setattr(self, key, value)
        if "capacity" in payload:
            capacity = payload["capacity"] or {}
            if not isinstance(capacity, dict) or not all(
                isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in capacity.items()
            ):
                raise ValueError("capacity must map instance types to whole numbers >= 0")
            self.capacity = dict(capacity)
        if "ebs_delay" in payload and payload["ebs_delay"] is not None:
            delay = float(payload["ebs_delay"])
            if delay < 0:
                raise ValueError("ebs_delay must be >= 0 seconds")
            self.ebs_delay = delay


SETTINGS = EC2Settings()

# what the response layer read from the RunInstances request that moto's backend does not get
# (requests run one at a time under the server's backend lock)
_launch_request: dict[str, Any] = {}
_WILDCARD = re.compile(r"[*?\\]")
_FNMATCH = re.compile(r"[*?\[\]\\]")  # what moto's tag filter (fnmatch) reads as a pattern


def _exact_filters(
    filters: dict[str, list[str]] | None, id_filter: str
) -> tuple[dict[str, set[str]], set[str] | None, dict[str, list[str]]]:
    """Split ``filters`` into the ones an exact lookup answers (``tag:KEY`` filters without a
    pattern character, and ``id_filter``) and the rest, for moto's own matching.

    DescribeInstances and DescribeVolumes filtered by the session tag cost O(all resources *
    (tag list + regex)) in moto; these are answered by the resource's own tag dict first, so
    that moto's filters run only on what is left (what the answer holds, nearly)."""
    tags: dict[str, set[str]] = {}
    ids: set[str] | None = None
    rest: dict[str, list[str]] = {}
    for name, values in (filters or {}).items():
        values = list(values or [])
        if name.startswith("tag:") and values and not any(_FNMATCH.search(v) for v in values):
            tags[name[4:]] = set(values)
        elif name == id_filter and values and not any(_WILDCARD.search(v) for v in values):
            ids = set(values)
        else:
            rest[name] = values
    return tags, ids, rest


def _volume_matches(volume: Any, name: str, values: list[str], exact: set[str] | None) -> bool:
    from moto.ec2.utils import is_filter_matching

    value = volume.get_filter_value(name)
    if exact is not None and isinstance(value, str):
        return value in exact  # what fnmatch answers for a pattern without wildcards
    return is_filter_matching(volume, name, values)


def _tagged(
    tag_dict: dict[str, dict[str, str]], resource_id: str, tags: dict[str, set[str]]
) -> bool:
    own = tag_dict.get(resource_id) or {}
    return all(own.get(key) in values for key, values in tags.items())


def _error(code: str, message: str) -> Exception:
    from moto.ec2.exceptions import EC2ClientError

    return EC2ClientError(code, message)


def vcpus_of(instance_type: str) -> int:
    """Default vCPUs of ``instance_type`` from moto's instance type table (1 if unknown)."""
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    info = INSTANCE_TYPES.get(instance_type) or {}
    return int((info.get("VCpuInfo") or {}).get("DefaultVCpus") or 1)


def launch_count(backend: Any, instance_type: str, min_count: int, max_count: int) -> int:
    """How many instances RunInstances launches (MaxCount if it fits, at least MinCount), else
    the error EC2 answers: VcpuLimitExceeded, InstanceLimitExceeded, InsufficientInstanceCapacity.
    """
    alive = [
        instance
        for reservation in list(backend.reservations.values())
        for instance in list(reservation.instances)
        if instance._state.name in LAUNCHED_STATES
    ]
    count = max_count
    if SETTINGS.vcpu_quota is not None:
        per = vcpus_of(instance_type)
        used = sum(vcpus_of(i.instance_type) for i in alive)
        room = max(0, (SETTINGS.vcpu_quota - used) // per)
        if room < min_count:
            raise _error(
                "VcpuLimitExceeded",
                f"You have requested more vCPU capacity than your current vCPU limit of "
                f"{SETTINGS.vcpu_quota} allows for the instance bucket that the specified "
                f"instance type belongs to ({min_count} x {instance_type} = {min_count * per} "
                f"vCPUs requested, {used} in use). Please visit "
                "http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this "
                "limit.",
            )
        count = min(count, room)
    if SETTINGS.instance_limit is not None:
        room = max(0, SETTINGS.instance_limit - len(alive))
        if room < min_count:
            raise _error(
                "InstanceLimitExceeded",
                f"You have requested more instances ({min_count}) than your current instance "
                f"limit of {SETTINGS.instance_limit} allows for the specified instance type. "
                "Please visit http://aws.amazon.com/contact-us/ec2-request to request an "
                "adjustment to this limit.",
            )
        count = min(count, room)
    if instance_type in SETTINGS.capacity:
        same = sum(1 for i in alive if i.instance_type == instance_type)
        room = max(0, SETTINGS.capacity[instance_type] - same)
        if room < min_count:
            raise _error(
                "InsufficientInstanceCapacity",
                f"We currently do not have sufficient {instance_type} capacity in the "
                "Availability Zone you requested. Our system will be working on provisioning "
                f"additional capacity. You can currently get {room} {instance_type} "
                "instance(s); try a smaller MinCount, another instance type or later.",
            )
        count = min(count, room)
    return count


def install() -> None:
    """Patch moto's EC2 in this process (call before the server's own hooks)."""
    from moto.ec2.exceptions import InvalidAMIIdError, InvalidVolumeIdError
    from moto.ec2.models import instances as moto_instances
    from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot, Volume
    from moto.ec2.models.instances import InstanceBackend
    from moto.ec2.models.tags import TagBackend
    from moto.ec2.responses.instances import InstanceResponse
    from moto.ec2.utils import (
        EC2_PREFIX_TO_RESOURCE,
        filter_dict_attribute_mapping,
        get_prefix,
        passes_filter_dict,
    )

    original_response_run = InstanceResponse.run_instances
    original_describe_tags = TagBackend.describe_tags
    original_run = InstanceBackend.run_instances
    original_volume_status = Volume.status
    original_create_volume = EBSBackend.create_volume
    original_create_snapshot = EBSBackend.create_snapshot
    original_describe_volumes = EBSBackend.describe_volumes
    original_attach = EBSBackend.attach_volume
    original_detach = EBSBackend.detach_volume

    def response_run_instances(self: Any) -> Any:
        # moto launches MinCount and drops MaxCount and MetadataOptions.*: keep them for the backend
        query = self.querystring
        options = {
            key.split(".", 1)[1]: values[0]
            for key, values in query.items()
            if key.startswith("MetadataOptions.") and values
        }
        min_count = int((query.get("MinCount") or ["1"])[0])
        max_count = int((query.get("MaxCount") or [str(min_count)])[0])
        if min_count < 1 or max_count < min_count:
            raise _error(
                "InvalidParameterValue",
                f"MinCount ({min_count}) must be at least 1 and MaxCount ({max_count}) at least "
                "MinCount.",
            )
        _launch_request.clear()
        _launch_request.update(min_count=min_count, max_count=max_count, metadata=options)
        try:
            return original_response_run(self)
        finally:
            _launch_request.clear()

    def run_instances(
        self: Any, image_id: str, count: int, user_data: Any, groups: Any, **kwargs: Any
    ) -> Any:
        if image_id not in self.amis:
            raise InvalidAMIIdError(image_id)
        if _launch_request.get("metadata") and not kwargs.get("metadata_options"):
            kwargs["metadata_options"] = _launch_request["metadata"]
        min_count = _launch_request.get("min_count", count)
        max_count = _launch_request.get("max_count", count)
        instance_type = kwargs.get("instance_type") or "m1.small"
        count = launch_count(self, instance_type, min_count, max_count)
        _launch_request["launching"] = True  # root volumes are attached at once, as on EC2
        try:
            return original_run(self, image_id, count, user_data, groups, **kwargs)
        finally:
            _launch_request.pop("launching", None)

    def volume_status(self: Any) -> str:
        if self.attachment is None and time.monotonic() < getattr(self, "_awsac_ready_at", 0.0):
            return "creating"
        return original_volume_status.fget(self)  # type: ignore[union-attr]

    def snapshot_status_get(self: Any) -> str:
        if time.monotonic() < getattr(self, "_awsac_ready_at", 0.0):
            return "pending"
        return self.__dict__.get("_awsac_status", "completed")

    def snapshot_status_set(self: Any, value: str) -> None:
        self.__dict__["_awsac_status"] = value

    def snapshot_progress(self: Any) -> str:
        return "0%" if snapshot_status_get(self) == "pending" else "100%"

    def create_volume(self: Any, size: Any = None, *args: Any, **kwargs: Any) -> Any:
        snapshot_id = kwargs.get("snapshot_id")
        if size is not None or not snapshot_id:
            gib = int(size) if size is not None else 0
            if gib < MIN_VOLUME_GIB:
                raise _error(
                    "InvalidParameterValue",
                    f"Volume of {gib}GiB is too small; minimum is {MIN_VOLUME_GIB}GiB.",
                )
            if gib > MAX_VOLUME_GIB:
                raise _error(
                    "InvalidParameterValue",
                    f"Volume of {gib}GiB is too large; maximum is {MAX_VOLUME_GIB}GiB.",
                )
        volume = original_create_volume(self, size, *args, **kwargs)
        volume._awsac_ready_at = time.monotonic() + SETTINGS.ebs_delay
        return volume

    def create_snapshot(self: Any, *args: Any, **kwargs: Any) -> Any:
        snapshot = original_create_snapshot(self, *args, **kwargs)
        snapshot._awsac_ready_at = time.monotonic() + SETTINGS.ebs_delay
        return snapshot

    def describe_volumes(
        self: Any, volume_ids: list[str] | None = None, filters: Any = None
    ) -> Any:
        if volume_ids:
            unknown = sorted(set(volume_ids) - set(self.volumes))
            if unknown:
                raise InvalidVolumeIdError(", ".join(unknown))
        if not filters:
            return original_describe_volumes(self, volume_ids=volume_ids, filters=filters)
        tags, ids, rest = _exact_filters(filters, "volume-id")
        wanted = set(volume_ids) if volume_ids else None
        found = [
            v
            for v in list(self.volumes.values())
            if (wanted is None or v.id in wanted)
            and (ids is None or v.id in ids)
            and _tagged(self.tags, v.id, tags)
        ]
        for name, values in rest.items():  # moto's generic_filter, exact values compared as such
            exact = None if any(_FNMATCH.search(v) for v in values) else set(values)
            found = [v for v in found if _volume_matches(v, name, values, exact)]
        return found

    def attach_volume(self: Any, volume_id: str, *args: Any, **kwargs: Any) -> Any:
        volume = self.get_volume(volume_id)
        if volume.status == "creating" and not _launch_request.get("launching"):
            raise _error("IncorrectState", f"{volume_id} is not 'available'.")
        return original_attach(self, volume_id, *args, **kwargs)

    def detach_volume(self: Any, volume_id: str, *args: Any, **kwargs: Any) -> Any:
        volume = self.get_volume(volume_id)
        if volume.attachment is None:
            raise _error(
                "IncorrectState", f"Volume '{volume_id}' is in the '{volume.status}' state."
            )
        return original_detach(self, volume_id, *args, **kwargs)

    def describe_tags(self: Any, filters: dict[str, list[str]] | None = None) -> Any:
        # every tagged resource's description asks for its own tags with a resource-id filter;
        # moto scans all tags of the region for it (with a regex per call): DescribeInstances of
        # n instances cost O(n * all tags). Answer that one form from the resource's own dict.
        ids = (filters or {}).get("resource-id") or []
        if filters and len(filters) == 1 and len(ids) == 1 and not _WILDCARD.search(ids[0]):
            resource_id = ids[0]
            kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
            return [
                {"resource_id": resource_id, "key": k, "value": v, "resource_type": kind}
                for k, v in list(self.tags.get(resource_id, {}).items())
            ]
        return original_describe_tags(self, filters)

    def filter_reservations(reservations: list[Any], filter_dict: Any) -> list[Any]:
        # moto's, with the session tag and instance-id filters looked up before its own matching
        tags, ids, rest = _exact_filters(filter_dict, "instance-id")
        result = []
        for reservation in reservations:
            kept = [
                i
                for i in reservation.instances
                if (ids is None or i.id in ids)
                and _tagged(i.ec2_backend.tags, i.id, tags)
                and (not rest or passes_filter_dict(i, rest))
            ]
            if kept:
                reservation.instances = kept
                result.append(reservation)
        return result

    moto_instances.filter_reservations = filter_reservations  # type: ignore[assignment]
    TagBackend.describe_tags = describe_tags  # type: ignore[method-assign]
    InstanceResponse.run_instances = response_run_instances  # type: ignore[method-assign]
    InstanceBackend.run_instances = run_instances  # type: ignore[method-assign]
    filter_dict_attribute_mapping["client-token"] = "client_token"  # DescribeInstances filter
    Volume.status = property(volume_status)  # type: ignore[method-assign,assignment]
    Snapshot.status = property(snapshot_status_get, snapshot_status_set)  # type: ignore[assignment]
    Snapshot.progress = property(snapshot_progress)  # type: ignore[method-assign,assignment]
    EBSBackend.create_volume = create_volume  # type: ignore[method-assign]
    EBSBackend.create_snapshot = create_snapshot  # type: ignore[method-assign]
    EBSBackend.describe_volumes = describe_volumes  # type: ignore[method-assign]
    EBSBackend.attach_volume = attach_volume  # type: ignore[method-assign]
    EBSBackend.detach_volume = detach_volume  # type: ignore[method-assign]
    _install_service_quotas()


# Service Quotas' code for "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
# counted in vCPUs: what a client reads before it asks RunInstances for a fleet.
ON_DEMAND_STANDARD_QUOTA = "L-1216C47A"


def _install_service_quotas() -> None:
    """GetServiceQuota answers the local cloud's vCPU quota (moto knows only vpc's defaults)."""
    from moto.servicequotas.exceptions import NoSuchResource
    from moto.servicequotas.models import ServiceQuotasBackend

    original = ServiceQuotasBackend.get_service_quota

    def get_service_quota(self: Any, service_code: str, quota_code: str) -> dict[str, Any]:
        if service_code == "ec2" and quota_code == ON_DEMAND_STANDARD_QUOTA:
            if SETTINGS.vcpu_quota is None:
                raise NoSuchResource  # no quota set: the client says it does not know one
            return {
                "ServiceCode": "ec2",
                "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
                "QuotaArn": f"arn:aws:servicequotas:{self.region_name}:{self.account_id}:"
                f"ec2/{ON_DEMAND_STANDARD_QUOTA}",
                "QuotaCode": ON_DEMAND_STANDARD_QUOTA,
                "QuotaName": "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
                "Value": float(SETTINGS.vcpu_quota),
                "Unit": "None",
                "Adjustable": True,
                "GlobalQuota": False,
            }
        return original(self, service_code, quota_code)

    ServiceQuotasBackend.get_service_quota = get_service_quota  # type: ignore[method-assign]
