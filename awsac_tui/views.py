"""The immutable values one refresh produces (SessionSnapshot and its views), and their JSON.

Below the polling engine (monitor.py) and the UI, so that neither imports the other to name them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from awsac_agent.status import TERMINAL, JobRecord, history_of, parse_iso

# EC2 instance states as the client groups them: up (booting or running: alive, and billed) and
# gone (on its way out or out). stopping/stopped are neither: they may start again.
INSTANCE_UP = frozenset({"pending", "running"})
INSTANCE_GONE = frozenset({"shutting-down", "terminated"})


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
    state_reason: str | None = None  # EC2 StateReason message (why it stopped or terminated)
    ended_at: datetime | None = None  # when it left running, where EC2 says (StateTransitionReason)
    heartbeat_age: float | None = None  # seconds since its agent's last heartbeat (when read)


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
    attempt: int = 1  # which try of the job this is (1-based)
    history: tuple[AttemptView, ...] = ()  # the earlier attempts, oldest first
    results: str | None = None  # "saved" / "none" once the job ended (status.RESULTS_*)


@dataclass(frozen=True)
class AttemptView:
    """One earlier attempt of a job (``awsac_agent.status.history_of``)."""

    attempt: int
    status: str
    instance_id: str | None = None
    runstarttime: datetime | None = None
    runendtime: datetime | None = None
    error: str | None = None


@dataclass(frozen=True)
class Changes:
    """What one refresh changed against the snapshot before it (keys of the rows), so that a
    view can apply only those. ``full``: everything may have changed (first snapshot)."""

    jobs: frozenset[int] = frozenset()
    instances: frozenset[str] = frozenset()
    volumes: frozenset[str] = frozenset()
    full: bool = False

    @property
    def empty(self) -> bool:
        return not (self.full or self.jobs or self.instances or self.volumes)


ALL_CHANGED = Changes(full=True)


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
    cleaned: bool = False  # the session was cleaned up: jobs are its last known states
    # what changed since the previous snapshot of the same monitor (not part of the value)
    changes: Changes = field(default=ALL_CHANGED, compare=False)

    def instance(self, instance_id: str | None) -> InstanceView | None:
        """The instance ``instance_id`` of this snapshot, or None."""
        return next((i for i in self.instances if i.instance_id == instance_id), None)


def attempt_views(record: JobRecord) -> tuple[AttemptView, ...]:
    """The earlier attempts of a status record as views, oldest first."""
    out = []
    for entry in history_of(record):
        try:
            attempt = int(entry.get("attempt") or 0)
        except (TypeError, ValueError):
            attempt = 0
        out.append(
            AttemptView(
                attempt=attempt,
                status=str(entry.get("status") or "?"),
                instance_id=entry.get("instance_id") or None,
                runstarttime=parse_iso(entry.get("runstarttime")),
                runendtime=parse_iso(entry.get("runendtime")),
                error=entry.get("error") or None,
            )
        )
    return tuple(out)


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def snapshot_to_dict(snap: SessionSnapshot) -> dict[str, Any]:
    """The snapshot as the JSON object ``check --json`` prints: the keys of issue 5 (times ISO 8601
    UTC, absent values None), plus ``silent`` per instance and the refresh's ``notices``, so a
    script sees what the text output flags."""
    return {
        "session_id": snap.session_id,
        "cloud": snap.cloud,
        "jobs": [
            {
                "jobnr": j.jobnr,
                "status": j.status,
                "instance_id": j.instance_id,
                "launchindex": j.launchindex,
                "shellscript": j.shellscript,
                "snapshot": j.snapshot,
                "returncode": j.returncode,
                "runstarttime": _iso(j.runstarttime),
                "runendtime": _iso(j.runendtime),
                "error": j.error,
                "attempt": j.attempt,
                "history": [
                    {
                        "attempt": a.attempt,
                        "status": a.status,
                        "instance_id": a.instance_id,
                        "runstarttime": _iso(a.runstarttime),
                        "runendtime": _iso(a.runendtime),
                        "error": a.error,
                    }
                    for a in j.history
                ],
            }
            for j in snap.jobs
        ],
        "instances": [
            {
                "instance_id": i.instance_id,
                "launchindex": i.launchindex,
                "state": i.state,
                "instance_type": i.instance_type,
                "zone": i.zone,
                "public_dns": i.public_dns,
                "silent": i.silent,
                "state_reason": i.state_reason,
            }
            for i in snap.instances
        ],
        "volumes": [
            {
                "volume_id": v.volume_id,
                "snapshot": v.snapshot,
                "state": v.state,
                "instance_id": v.instance_id,
                "device": v.device,
            }
            for v in snap.volumes
        ],
        "notices": list(snap.notices),
        "cleaned": snap.cleaned,
    }


def snapshot_to_json(snap: SessionSnapshot) -> str:
    """``snapshot_to_dict`` as one line of JSON."""
    return json.dumps(snapshot_to_dict(snap))


def all_terminal(snap: SessionSnapshot) -> bool:
    """Whether every job of the snapshot has a terminal status."""
    return bool(snap.jobs) and all(j.status in TERMINAL for j in snap.jobs)
