"""The session spec: ``session.toml`` (read with tomllib, written with tomli-w), and the legacy
``session.ini`` (``[startinfo]``) read and converted.

Pure: no cloud calls. Validation reports every problem at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

StatusStoreKind = Literal["simpledb", "s3"]
ImageMode = Literal["baked", "stock"]


@dataclass(frozen=True)
class CloudProfile:
    """Which cloud a session talks to: the local cloud, or AWS/an EC2-compatible endpoint."""

    local: bool = False
    profile: str | None = None  # AWS shared-config profile name
    region: str | None = None
    endpoint_url: str | None = None

    def describe(self) -> str:
        if self.local:
            return "local"
        parts = [self.profile or "default"]
        if self.region:
            parts.append(self.region)
        if self.endpoint_url:
            parts.append(self.endpoint_url)
        return "/".join(parts)


@dataclass(frozen=True)
class SessionSpec:
    """Everything needed to start a session, apart from the jobs themselves (jobs.cfg)."""

    instance_type: str
    image_id: str
    bucket: str
    shortdescr: str
    image_owner: str | None = None
    key_name: str | None = None
    security_groups: tuple[str, ...] = ()
    subnet_id: str | None = None
    availability_zone: str | None = None
    instance_profile: str | None = None  # IAM instance profile name or ARN
    spot: bool = False
    spot_max_price: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    status_store: StatusStoreKind = "simpledb"
    cloud: CloudProfile = field(default_factory=CloudProfile)
    jobs_cfg: str = "jobs.cfg"  # relative to the spec file's directory
    job_dir: str | None = None  # directory archived as the session archive (default: spec's dir)
    archive: str | None = None  # a prebuilt .tar.bz2 session archive, instead of job_dir
    n_jobs: int | None = None  # stated job count (legacy); must match jobs.cfg
    jobs_per_instance: int | None = None  # lowers the instance type's vCPU count
    image_mode: ImageMode = "baked"
    ssh_user: str = "ec2-user"
    max_job_minutes: float | None = None
    max_session_hours: float = 12.0
