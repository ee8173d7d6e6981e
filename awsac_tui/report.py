"""Text renderings of sessions for the headless commands and the demo: the paper's
``[sessionconfig]`` block and per-job blocks, resources and counts."""

from __future__ import annotations

from datetime import datetime

from awsac_agent.status import count_statuses

from .records import SessionRecord
from .views import SessionSnapshot


def format_time(dt: datetime | None) -> str:
    """A time as the paper prints it (``2008-12-15 16:49:39``), ``-`` when unknown."""
    return dt.strftime("%Y-%m-%d %H:%M:%S") if dt else "-"


def format_paper_config(record: SessionRecord) -> str:
    """The paper's ``[sessionconfig]`` block."""
    lines = ["[sessionconfig]"] + [f"{k} = {v}" for k, v in record.paper_config().items()]
    return "\n".join(lines)


def format_job_blocks(snap: SessionSnapshot) -> str:
    """The paper's per-job blocks (``===== Job N (status: ...) =====``)."""
    out = []
    for j in snap.jobs:
        state = f"{j.status}, cleaned" if snap.cleaned else j.status
        lines = [f"===== Job {j.jobnr} (status: {state}) ====="]
        where = f"running {j.shellscript or '?'}"
        if j.instance_id:
            where += f" on instance {j.instance_id}"
        if j.launchindex is not None:
            where += f" with launchindex {j.launchindex}"
        lines.append(where)
        if j.runstarttime:
            lines.append(f"started running: {format_time(j.runstarttime)}")
        if j.runendtime:
            lines.append(f"ended running: {format_time(j.runendtime)}")
        if j.returncode is not None:
            lines.append(f"returncode: {j.returncode}")
        if j.savestarttime:
            lines.append(f"started saving: {format_time(j.savestarttime)}")
        if j.saveendtime:
            lines.append(f"ended saving: {format_time(j.saveendtime)}")
        if j.error:
            lines.append(f"error: {j.error}")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def format_resources(snap: SessionSnapshot) -> str:
    """The instances, volumes and notices of a snapshot, one line each."""
    lines = []
    if snap.instances:
        lines.append("instances:")
        for i in snap.instances:
            flag = "  SILENT" if i.silent else ""
            lines.append(
                f"  {i.instance_id}  LI {i.launchindex}  {i.state:<13} {i.instance_type or '-'}  "
                f"{i.zone or '-'}  {i.public_dns or '-'}{flag}"
            )
    else:
        lines.append("instances: none tagged with this session")
    if snap.volumes:
        lines.append("volumes:")
        for v in snap.volumes:
            lines.append(
                f"  {v.volume_id}  {v.snapshot or '-'}  {v.state:<9} {v.instance_id or '-'}  {v.device or '-'}"
            )
    for n in snap.notices:
        lines.append(f"notice: {n}")
    return "\n".join(lines)


def format_counts(snap: SessionSnapshot) -> str:
    """Jobs by status, in status order (``3 finished, 1 running``)."""
    counts = count_statuses(j.status for j in snap.jobs)
    return ", ".join(f"{n} {s}" for s, n in counts) or "no jobs"
