"""The client's second line of defence at each refresh: the session lease and interrupted starts.

The agent ends its own instance when the session's lease (``max_session_hours``) is over; an
instance whose agent never ran (bad image, broken user-data) cannot, so the client terminates
any instance of the session still alive past the lease. A record left in ``starting`` (the client
was killed during ``start``) is resolved from what the cloud holds.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime
from typing import Any, Protocol

from awsac_agent.retry import describe, is_retryable
from awsac_agent.userdata import lease_grace as agent_lease_grace
from awsac_agent.userdata import parse_userdata

from . import records
from .cloud import Cloud, translate
from .records import SessionRecord
from .resources import terminate_instances
from .views import INSTANCE_GONE, Changes, SessionSnapshot


class Swept(Protocol):
    """What the sweep reads and updates of a Monitor (monitor.py sits above this module)."""

    record: SessionRecord
    cloud: Cloud
    last: SessionSnapshot | None


def lease_seconds(record: SessionRecord) -> float | None:
    """The session's lease in seconds from its user-data (``lease_h``), or None when unknown."""
    ud = parse_userdata(record.runuserdata or "")
    try:
        hours = float(ud.get("lease_h") or 0) if ud else 0.0
    except ValueError:
        return None
    return hours * 3600 if hours > 0 else None


def sweep_deadline(lease: float, reported: bool) -> float:
    """Seconds after launch at which the client terminates an instance.

    One whose agent reported is given twice the agent's own grace (it tears down, then ends
    itself); one that never reported has no agent to wait for: the lease is its end.
    """
    return lease + 2 * lease_grace(lease) if reported else lease


def lease_grace(lease: float) -> float:
    """The agent's grace after the lease before its hard stop (awsac_agent.autorun)."""
    return agent_lease_grace(lease)


async def sweep_session(
    monitor: Swept, raw_instances: list[dict[str, Any]], now: datetime, reported: set[str]
) -> list[str]:
    """Terminate instances past the lease; resolve a ``starting`` record. Returns notices.

    ``reported``: ids of instances a job record names (their agent ran).
    """
    notices: list[str] = []
    record = monitor.record
    sid = record.session_id
    if record.state == "starting":
        notices.append(await _resolve_starting(monitor, raw_instances))
    lease = lease_seconds(monitor.record)
    if lease is None:
        return notices
    late = [
        i["InstanceId"]
        for i in raw_instances
        if i["State"]["Name"] not in INSTANCE_GONE  # up, or stopped: still the session's
        and isinstance(i.get("LaunchTime"), datetime)
        and (now - i["LaunchTime"]).total_seconds()
        > sweep_deadline(lease, i["InstanceId"] in reported)
    ]
    if late:
        await terminate_instances(monitor.cloud, late, "session lease")
        notices.append(
            f"instance(s) {', '.join(late)} of {sid} outlived the session lease of "
            f"{lease / 3600:g} h (max_session_hours): terminated by the client"
        )
    return notices


async def _resolve_starting(monitor: Swept, raw_instances: list[dict[str, Any]]) -> str:
    record = monitor.record
    sid = record.session_id
    if raw_instances:
        if record.path is not None and records.record_path(sid).exists():
            monitor.record = await asyncio.to_thread(
                records.save_record, record.with_(state="running")
            )
        return (
            f"the start of {sid} was interrupted after RunInstances: its "
            f"{len(raw_instances)} instance(s) exist, so the session runs (record updated)"
        )
    return (
        f"the start of {sid} did not finish and no instance was launched; "
        f"`awsac cleanup {sid}` removes what it uploaded (then start again)"
    )


def last_good(monitor: Swept, exc: BaseException) -> SessionSnapshot:
    """The monitor's last good snapshot with a notice, when the status store cannot be read.

    Raised again (as a user error) when there is no earlier snapshot or the error is not transient.
    """
    cause = exc.__cause__ if exc.__cause__ is not None else exc  # under cloud_errors' wrapper
    last = monitor.last
    if last is None or not is_retryable(cause):
        raise translate(exc, "reading the status store") from exc
    notice = (
        f"status store unavailable ({describe(cause)}); showing the last good snapshot "
        f"taken at {last.taken_at:%H:%M:%S}"
    )
    return dataclasses.replace(last, notices=(notice,), changes=Changes())
