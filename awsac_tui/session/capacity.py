"""What the account may launch: the On-Demand vCPU quota, and RunInstances' capacity refusals
turned into one message with the numbers and the fix (issue 14)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from awsac_agent.errors import CloudError

from ..cloud import Cloud, error_code

# Service Quotas: "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", in vCPUs.
ON_DEMAND_STANDARD_QUOTA = "L-1216C47A"
# RunInstances refusals that mean "not that many, not now": another type, fewer, or later.
CAPACITY_CODES = (
    "InsufficientInstanceCapacity",
    "VcpuLimitExceeded",
    "InstanceLimitExceeded",
    "MaxSpotInstanceCountExceeded",
)
_LIMIT_IN_MESSAGE = re.compile(r"limit of (\d+)")


class CapacityError(CloudError):
    """The cloud refused the session's instances for capacity or quota (exit 2: change the
    request). The message names what was asked for, what is allowed, and the fix."""


@dataclass(frozen=True)
class Quota:
    """A limit the account has, as the cloud states it."""

    value: int
    unit: str  # "vCPUs" or "instances"
    source: str  # where it was read, for the user

    def text(self) -> str:
        return f"{self.value} {self.unit} ({self.source})"


async def read_quota(cloud: Cloud) -> Quota | None:
    """The account's On-Demand vCPU quota (Service Quotas), else its instance limit
    (DescribeAccountAttributes max-instances), else None when the account does not say."""
    try:
        sq = await cloud.client("service-quotas")
        resp = await sq.get_service_quota(ServiceCode="ec2", QuotaCode=ON_DEMAND_STANDARD_QUOTA)
        value = (resp.get("Quota") or {}).get("Value")
        if value is not None:
            return Quota(int(value), "vCPUs", f"Service Quotas {ON_DEMAND_STANDARD_QUOTA}")
    except Exception:  # noqa: BLE001 - no quota known (denied, not offered): try the next source
        pass
    if cloud.profile.local:
        return None  # the local cloud states its quota through Service Quotas only
    try:
        ec2 = await cloud.client("ec2")
        resp = await ec2.describe_account_attributes(AttributeNames=["max-instances"])
        for attr in resp.get("AccountAttributes") or []:
            for v in attr.get("AttributeValues") or []:
                text = str(v.get("AttributeValue") or "")
                if text.isdigit():
                    return Quota(int(text), "instances", "DescribeAccountAttributes max-instances")
    except Exception:  # noqa: BLE001 - unknown is an answer too
        pass
    return None


def is_capacity_refusal(exc: BaseException) -> bool:
    return error_code(exc) in CAPACITY_CODES


def fits(quota: Quota | None, n_instances: int, vcpus: int) -> int:
    """How many of ``n_instances`` of ``vcpus`` each the quota can hold (all when unknown)."""
    if quota is None:
        return n_instances
    per = vcpus if quota.unit == "vCPUs" else 1
    return min(n_instances, quota.value // max(1, per))


@dataclass(frozen=True)
class Refusal:
    """One instance type the cloud (or the quota) refused."""

    instance_type: str
    n_instances: int
    vcpus: int
    code: str
    message: str

    def text(self) -> str:
        asked = f"{self.n_instances} x {self.instance_type} ({self.n_instances * self.vcpus} vCPUs)"
        return f"{asked}: {self.code}: {self.message}"


def refusal_of(exc: BaseException, instance_type: str, n_instances: int, vcpus: int) -> Refusal:
    code = error_code(exc)
    message = str(getattr(exc, "response", {}).get("Error", {}).get("Message") or exc)
    return Refusal(instance_type, n_instances, vcpus, code, message)


def over_quota(instance_type: str, n_instances: int, vcpus: int, quota: Quota) -> Refusal:
    asked = n_instances * (vcpus if quota.unit == "vCPUs" else 1)
    return Refusal(
        instance_type,
        n_instances,
        vcpus,
        "VcpuLimitExceeded" if quota.unit == "vCPUs" else "InstanceLimitExceeded",
        f"{asked} {quota.unit} asked for, the account allows {quota.text()}",
    )


def capacity_error(refusals: list[Refusal], quota: Quota | None, *, queue: bool) -> CapacityError:
    """One message for every refusal: what was asked, what is allowed, and what to change."""
    allowed = quota.text() if quota else None
    if allowed is None:
        for r in refusals:
            m = _LIMIT_IN_MESSAGE.search(r.message)
            if m and r.code == "VcpuLimitExceeded":
                allowed = f"{m.group(1)} vCPUs (from EC2's answer)"
                break
            if m and r.code == "InstanceLimitExceeded":
                allowed = f"{m.group(1)} instances (from EC2's answer)"
                break
    lines = ["the cloud refused the session's instances:"]
    lines += [f"  - {r.text()}" for r in refusals]
    if allowed:
        lines.append(f"  the account allows {allowed}")
    codes = {r.code for r in refusals}
    fixes = []
    if codes & {"VcpuLimitExceeded", "InstanceLimitExceeded", "MaxSpotInstanceCountExceeded"}:
        if not queue:
            fixes.append(
                'run fewer instances at once: assignment = "queue" with max_vcpus (or '
                "max_instances) within the quota in session.toml"
            )
        else:
            fixes.append("lower max_vcpus / max_instances in session.toml")
        fixes.append(
            f"or ask for a higher quota (Service Quotas, code {ON_DEMAND_STANDARD_QUOTA}; "
            "spot: L-34B43A08)"
        )
    if "InsufficientInstanceCapacity" in codes:
        fixes.append(
            "name fallback types in session.toml (instance_types = [...], tried in order), "
            "choose another availability zone, or start again later"
        )
    lines.append("  fix: " + "; ".join(fixes) + "; nothing was left running")
    return CapacityError("\n".join(lines))
