"""Run lost work again (issue 13): put the jobs back to pending as their next attempt and
launch a new reservation of the session for them (same archive, same launch settings)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from awsac_agent import assignment
from awsac_agent.errors import FormatError
from awsac_agent.status import FAILED, KILLED, LOST, JobRecord, may_retry
from awsac_agent.userdata import K_JOBS, K_RESERVATION, format_job_list

from .. import records
from ..cloud import Cloud
from ..records import SessionRecord
from ..resources import describe_instances
from ..views import INSTANCE_UP
from .common import Say, SessionError, cloud_for, quiet, store_for
from .launch import launch, rewrite_userdata
from .plan import Fleet
from .start import client_token

# What a user may name for another attempt (a finished job is done; a running one still runs).
RETRYABLE_BY_NAME = (LOST, FAILED, KILLED)


@dataclass(frozen=True)
class RetryResult:
    """What one retry did."""

    jobs: tuple[int, ...]  # put back to pending as their next attempt
    skipped: tuple[str, ...]  # why a job was not retried, one line each
    reservation_id: str | None = None
    instance_ids: tuple[str, ...] = ()

    def text(self) -> str:
        lines = list(self.skipped)
        if not self.jobs:
            lines.append("no job to retry")
        elif self.reservation_id:
            lines.append(
                f"retrying job(s) {format_job_list(self.jobs)} on {len(self.instance_ids)} new "
                f"instance(s), reservation {self.reservation_id}"
            )
        else:
            lines.append(
                f"job(s) {format_job_list(self.jobs)} back in the queue: the session's running "
                "instances claim them"
            )
        return "\n".join(lines)


def retry_candidates(
    record: SessionRecord, jobs: Sequence[JobRecord], asked: Sequence[int] | None
) -> tuple[list[JobRecord], list[str]]:
    """The jobs to retry and why others are not. Without ``asked``: every lost job (and failed
    one, with retry_failed) under max_attempts. With ``asked``: those, if they have ended."""
    by_nr = {r.jobnr: r for r in jobs}
    chosen: list[JobRecord] = []
    skipped: list[str] = []
    cap = record.max_attempts
    if asked is None:
        for rec in sorted(by_nr.values(), key=lambda r: r.jobnr):
            if may_retry(rec, cap, record.retry_failed):
                chosen.append(rec)
            elif rec.status == LOST or (record.retry_failed and rec.status == FAILED):
                skipped.append(
                    f"job {rec.jobnr}: {rec.status} after {rec.attempt} attempt(s), the most "
                    f"max_attempts = {cap} allows (raise it, or retry it by number)"
                )
        return chosen, skipped
    for nr in asked:
        if not 1 <= nr <= max(record.n_jobs, 1):
            raise FormatError(
                f"job {nr} does not exist in {record.session_id} (jobs 1..{record.n_jobs})"
            )
        rec = by_nr.get(nr)
        if rec is None or rec.status not in RETRYABLE_BY_NAME:
            status = rec.status if rec else "pending"
            skipped.append(f"job {nr}: {status}, not ended as lost, failed or killed: not retried")
            continue
        chosen.append(rec)
    return chosen, skipped


async def retry(
    record: SessionRecord,
    jobs: Sequence[int] | None = None,
    *,
    cloud: Cloud | None = None,
    say: Say = quiet,
) -> RetryResult:
    """Retry the session's lost jobs (or the named ended ones) on a new reservation."""
    if not record.launch:
        raise SessionError(
            f"{record.session_id} was started by an awsac without retries (its record has no "
            "launch settings): start the session again for these jobs"
        )
    if record.state == "cleaned":
        raise SessionError(f"{record.session_id} was cleaned up: start the session again")
    queue = record.assignment == assignment.QUEUE
    async with cloud_for(record, cloud) as c:
        store = store_for(record, c)
        chosen, skipped = retry_candidates(record, await store.read_all(), jobs)
        done: list[int] = []
        for rec in chosen:
            new = await store.requeue(rec)
            if new is None:
                skipped.append(f"job {rec.jobnr}: its record changed meanwhile: not retried")
            else:
                done.append(new.jobnr)
        if not done:
            return RetryResult((), tuple(skipped))
        alive = [
            i
            for i in await describe_instances(c, record.session_id)
            if i.get("State", {}).get("Name") in INSTANCE_UP
        ]
        n_jobs = len(done)
        cap = record.max_instances
        if queue and cap is not None:
            if len(alive) >= cap:
                say(f"{len(alive)} instance(s) still run: they claim the re-queued jobs")
                return RetryResult(tuple(done), tuple(skipped))
            cap -= len(alive)
        reservation = record.reservations + 1
        changes: dict[str, str | None] = {K_RESERVATION: str(reservation)}
        if not queue:
            changes[K_JOBS] = format_job_list(done)
        args = dict(record.launch)
        args["UserData"] = rewrite_userdata(args["UserData"], **changes)
        try:
            got = await launch(
                c,
                args,
                types=(str(args["InstanceType"]),),
                fleet=Fleet(
                    n_jobs,
                    queue,
                    record.jobs_per_instance or record.cores_per_instance,
                    cap,
                    record.max_vcpus,
                ),
                token=lambda i: client_token(record.session_id, try_=i, reservation=reservation),
                say=say,
            )
        except Exception as exc:
            # the jobs were put back to pending for an instance that never came: say so on them
            why = f"a retry could not launch an instance: {exc}"
            await asyncio.gather(*(store.mark_lost(nr, why) for nr in done))
            raise
        await asyncio.to_thread(
            records.save_record,
            record.with_(reservations=reservation, state="running"),
        )
        return RetryResult(tuple(done), tuple(skipped), got.reservation_id, got.instance_ids)
