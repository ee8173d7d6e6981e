"""One polling loop per session -> an immutable SessionSnapshot (instances, volumes, jobs).

The data types here are what the headless ``check`` prints and what the TUI renders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class InstanceView:
    instance_id: str
    launchindex: int | None
    state: str  # pending | running | shutting-down | terminated | stopping | stopped
    instance_type: str | None = None
    zone: str | None = None
    public_dns: str | None = None
    launch_time: datetime | None = None
    silent: bool = False  # running, but no job status after the boot timeout


@dataclass(frozen=True)
class VolumeView:
    volume_id: str
    snapshot: str | None
    state: str  # creating | available | in-use | deleting | deleted
    instance_id: str | None = None
    device: str | None = None
    size_gib: int | None = None


@dataclass(frozen=True)
class JobView:
    jobnr: int
    status: str
    instance_id: str | None = None
    launchindex: int | None = None
    shellscript: str | None = None
    snapshot: str | None = None
    returncode: int | None = None
    runstarttime: datetime | None = None
    runendtime: datetime | None = None
    savestarttime: datetime | None = None
    saveendtime: datetime | None = None
    error: str | None = None


@dataclass(frozen=True)
class SessionSnapshot:
    """Everything one refresh learned about a session."""

    session_id: str
    cloud: str
    taken_at: datetime
    jobs: tuple[JobView, ...] = ()
    instances: tuple[InstanceView, ...] = ()
    volumes: tuple[VolumeView, ...] = ()
    notices: tuple[str, ...] = field(default=())  # e.g. "status store throttled; showing last good"
