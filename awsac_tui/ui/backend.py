"""What the TUI needs from the client: a thin ``Backend`` protocol and the sessions screen's
summary. Implementations: ``LiveBackend`` (live.py) and, for tests, ``awsac_tui.testing``.
"""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from awsac_agent.jobscfg import JobLine
from awsac_agent.status import count_statuses

from awsac_tui.session import ComposeChoices, Quota, StartPlan
from awsac_tui.spec import CloudProfile, SessionSpec
from awsac_tui.views import INSTANCE_UP, SessionSnapshot

ProgressCallback = Callable[[str, float | None], None]
"""``progress(message, fraction)``: fraction in 0..1, or None when unknown."""


ConfirmCallback = Callable[[StartPlan], Awaitable[bool]]


@dataclass(frozen=True)
class SessionSummary:
    """One line of the sessions screen."""

    session_id: str
    cloud: str
    created: datetime
    instance_type: str
    n_instances: int
    instances_alive: int
    job_counts: tuple[tuple[str, int], ...]  # (status, count), in status order
    n_jobs: int
    est_cost: float | None = None  # estimated USD so far (instance-hours x hourly price)
    cleaned: bool = False
    state: str = ""  # the record's state (starting, running, ended, cleaned, failed)

    def count(self, status: str) -> int:
        return dict(self.job_counts).get(status, 0)


@runtime_checkable
class Backend(Protocol):
    """The verbs the TUI calls. Implementations: LiveBackend (live.py), FixedBackend (testing).

    Every coroutine runs on the app's event loop (async workers), never in a thread.
    """

    def now(self) -> datetime:
        """The current time (a fixed clock in tests)."""
        ...

    def cloud_description(self) -> str:
        """The cloud the TUI composes for, in a few words (no I/O: resolved by ``probe_cloud``)."""
        ...

    def compose_cloud(self) -> CloudProfile:
        """The cloud profile a composed session runs on (what its session.toml says)."""
        ...

    async def probe_cloud(self) -> str | None:
        """Resolve the cloud to use; None when it answers, else why not in user words."""
        ...

    async def start_local_cloud(self) -> str:
        """Start the local cloud (and use it from now on); returns its description."""
        ...

    async def make_snapshot(self, directory: Path, description: str) -> str:
        """A local-cloud snapshot of ``directory``'s content (`awsac local snapshot DIR`)."""
        ...

    async def list_sessions(self) -> list[SessionSummary]: ...

    async def refresh(self, session_id: str) -> SessionSnapshot:
        """One monitor refresh of a session."""
        ...

    async def compose_choices(self) -> ComposeChoices: ...

    async def account_quota(self) -> Quota | None:
        """The account's On-Demand vCPU quota (or instance limit) where the cloud says it."""
        ...

    async def check_references(
        self, spec: SessionSpec, jobs: Sequence[JobLine], spec_dir: Path
    ) -> list[str]:
        """Problems with the image and snapshots the draft names (each must exist)."""
        ...

    async def start(
        self,
        spec: SessionSpec,
        jobs: Sequence[JobLine],
        spec_dir: Path,
        progress: ProgressCallback,
        confirm: ConfirmCallback,
    ) -> str | None:
        """Start a session; returns its id, or None when the user declined at ``confirm``."""
        ...

    async def kill_job(self, session_id: str, jobnr: int) -> None: ...

    async def retry(self, session_id: str, jobs: Sequence[int] | None = None) -> list[int]:
        """Run lost jobs again on a new reservation (``session.retry``); the job numbers retried."""
        ...

    def instance_state(self, session_id: str, instance_id: str) -> str | None:
        """The instance's state in the last refresh (None when unknown)."""
        ...

    def session_state(self, session_id: str) -> str:
        """The record's state (``cleaned`` once cleanup ran); '' when unknown."""
        ...

    def retry_policy(self, session_id: str) -> tuple[int, bool]:
        """(max_attempts, retry_failed) of the session, for the auto-retry setting."""
        ...

    def results_location(self, session_id: str, jobnr: int) -> str:
        """Where the job's results are (its S3 URL), for the job detail view."""
        ...

    async def terminate_instance(self, session_id: str, instance_id: str) -> None: ...

    async def console_output(self, session_id: str, instance_id: str) -> str: ...

    async def job_log(self, session_id: str, jobnr: int) -> str:
        """The live tail of a running job, or its saved stdout+stderr once it has ended."""
        ...

    async def results(
        self, session_id: str, dest: Path, progress: ProgressCallback
    ) -> list[Path]: ...

    async def cleanup_plan(self, session_id: str) -> str:
        """What is left of a session and what cleanup would remove, naming the outputs never
        downloaded and the jobs still running (shown before the user confirms)."""
        ...

    async def cleanup(self, session_id: str) -> list[str]:
        """Remove what is left of a session, the user having confirmed the last cleanup_plan
        (what it named may go; anything new it did not name is kept); returns what was removed
        and kept, one line each, the summary last."""
        ...

    async def ssh_command(self, session_id: str, instance_id: str) -> list[str]:
        """argv that opens a shell on the instance (ssh, or the local cloud's shell)."""
        ...


def summarize(
    snap: SessionSnapshot,
    *,
    created: datetime,
    instance_type: str,
    n_instances: int,
    hourly_price: float | None,
    now: datetime,
    cleaned: bool = False,
) -> SessionSummary:
    """A sessions-screen line from a snapshot: counts by status, instances alive, estimated cost."""
    job_counts = tuple(count_statuses(j.status for j in snap.jobs))
    alive = sum(1 for i in snap.instances if i.state in INSTANCE_UP)
    cost = None
    if hourly_price is not None:
        cost = instance_hours(snap, now) * hourly_price
    return SessionSummary(
        session_id=snap.session_id,
        cloud=snap.cloud,
        created=created,
        instance_type=instance_type,
        n_instances=n_instances,
        instances_alive=alive,
        job_counts=job_counts,
        n_jobs=len(snap.jobs),
        est_cost=cost,
        cleaned=cleaned,
    )


def instance_hours(snap: SessionSnapshot, now: datetime) -> float:
    """Instance-hours so far: alive instances up to ``now``, gone ones up to their last job's end."""
    hours = 0.0
    for inst in snap.instances:
        if inst.launch_time is None:
            continue
        if inst.state in INSTANCE_UP:
            end = now
        else:
            ends = [
                t
                for j in snap.jobs
                if j.instance_id == inst.instance_id
                for t in (j.saveendtime, j.runendtime)
                if t is not None
            ]
            end = inst.ended_at or max(ends, default=inst.launch_time)
        hours += max(0.0, (end - inst.launch_time).total_seconds() / 3600)
    return hours


def format_command(argv: Sequence[str]) -> str:
    """A shell-quoted command line to show a user."""
    return shlex.join(argv)
