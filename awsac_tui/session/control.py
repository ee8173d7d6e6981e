"""Act on one part of a running session: kill a job, terminate an instance."""

from __future__ import annotations

from awsac_agent.errors import FormatError
from awsac_agent.status import PENDING, TERMINAL

from ..cloud import Cloud
from ..records import SessionRecord
from ..resources import describe_instances, terminate_instances
from .common import SessionError, cloud_for, store_for, wait_until


class JobEnded(SessionError):
    """A kill of a job that has already ended: nothing was written (``status`` says how it ended)."""

    exit_code = 0

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


async def kill(
    record: SessionRecord,
    jobnr: int,
    *,
    wait: bool = False,
    timeout: float = 300.0,
    cloud: Cloud | None = None,
) -> str:
    """Request that job ``jobnr`` be killed; with ``wait``, until it is terminal. Returns its status.

    A job that has already ended is left alone: nothing is written (neither the status store
    nor ``control/``) and JobEnded says how it ended.
    """
    if not 1 <= jobnr <= max(record.n_jobs, 1):
        raise FormatError(
            f"job {jobnr} does not exist in {record.session_id} (jobs 1..{record.n_jobs})"
        )
    if record.state == "cleaned":
        raise SessionError(
            f"session {record.session_id} was cleaned up: no job of it runs (nothing written)"
        )
    async with cloud_for(record, cloud) as c:
        store = store_for(record, c)
        current = {r.jobnr: r for r in await store.read_all()}.get(jobnr)
        if current is not None and current.status in TERMINAL:
            raise JobEnded(
                f"job {jobnr} of {record.session_id} has already ended ({current.status}); "
                "nothing to kill, nothing was written",
                current.status,
            )
        await store.request_kill(jobnr)
        status = "kill requested"
        if wait:

            async def terminal() -> bool:
                nonlocal status
                rec = {r.jobnr: r for r in await store.read_all()}.get(jobnr)
                status = rec.status if rec else PENDING
                return status in TERMINAL

            await wait_until(terminal, timeout, f"job {jobnr} to be killed")
        return status


async def terminate(record: SessionRecord, instance_id: str, *, cloud: Cloud | None = None) -> str:
    """Terminate one instance of the session; returns its new state."""
    async with cloud_for(record, cloud) as c:
        ids = {i["InstanceId"] for i in await describe_instances(c, record.session_id)}
        if instance_id not in ids:
            raise FormatError(f"instance {instance_id} is not part of session {record.session_id}")
        states = await terminate_instances(c, [instance_id], "asked by the user")
        return states[0] if states else "unknown"
