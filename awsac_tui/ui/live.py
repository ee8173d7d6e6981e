"""LiveBackend: the Backend on the real client verbs (session/, monitor.py, records.py).

Every cloud call runs on a MonitorPool's thread (its own event loop, one Cloud per profile), so
that botocore's parsing of big answers never holds the TUI's loop; the TUI only awaits results.
No AWS client is touched here: every cloud call goes through a session verb or the Monitor.
"""

from __future__ import annotations

import asyncio
import contextlib
import tomllib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from awsac_agent import s3layout
from awsac_agent.errors import AwsacError
from awsac_agent.jobscfg import JobLine
from awsac_agent.status import DEFAULT_MAX_ATTEMPTS, parse_iso

from awsac_tui import records, session
from awsac_tui.monitor import MonitorPool
from awsac_tui.session import ComposeChoices
from awsac_tui.spec import CloudProfile, SessionSpec
from awsac_tui.ui.backend import ConfirmCallback, ProgressCallback, SessionSummary, summarize
from awsac_tui.views import SessionSnapshot


class LiveBackend:
    """The Backend of the real client: session records, the Monitor and the session verbs."""

    def __init__(self, compose_profile: CloudProfile | None = None) -> None:
        self.compose_profile = compose_profile
        """The cloud to compose for; None: the local cloud when it runs, else AWS (probe_cloud)."""
        self._resolved: CloudProfile | None = compose_profile
        self._prices: dict[str | None, dict[str, float]] = {}
        self._pool = MonitorPool()
        self._last: dict[str, SessionSnapshot] = {}
        self._records: dict[str, records.SessionRecord] = {}
        self._cleaning: set[str] = set()
        self._cleanup_plans: dict[str, session.CleanupPlan] = {}  # shown, awaiting a yes

    # ---- plumbing -----------------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.now(UTC)

    def cloud_description(self) -> str:
        if self._resolved is None:
            return "…"  # probe_cloud (in the sessions screen's worker) resolves it
        return self._resolved.describe()

    def compose_cloud(self) -> CloudProfile:
        return self._resolved or self.compose_profile or CloudProfile()

    async def _profile(self) -> CloudProfile:
        if self._resolved is None:  # a health call to the local cloud: off the event loop
            self._resolved = await asyncio.to_thread(session.default_profile)
        return self._resolved

    async def probe_cloud(self) -> str | None:
        try:
            await self._on(await self._profile(), _opened)
        except AwsacError as exc:
            return str(exc)
        return None

    async def start_local_cloud(self) -> str:
        profile = await asyncio.to_thread(session.start_local_cloud)
        self._resolved = self.compose_profile = profile
        await self._on(profile, _opened)
        return profile.describe()

    async def make_snapshot(self, directory: Path, description: str) -> str:
        return await asyncio.to_thread(session.make_local_snapshot, directory, description)

    async def _on(self, profile: CloudProfile, fn: Callable[[session.Cloud], Awaitable]) -> object:
        """``await fn(cloud)`` on the pool's thread (its Cloud for ``profile``)."""
        return await self._pool.call(profile, fn)  # type: ignore[arg-type]

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def _record(self, session_id: str, reload: bool = False) -> records.SessionRecord:
        rec = self._records.get(session_id)
        if rec is None or reload:
            rec = await asyncio.to_thread(records.load_record, session_id)
            self._records[session_id] = rec
        return rec

    # ---- sessions -----------------------------------------------------------------------

    async def list_sessions(self) -> list[SessionSummary]:
        recs = await asyncio.to_thread(records.list_records)
        for rec in recs:
            self._records[rec.session_id] = rec
        live = [
            r for r in recs if r.state in ("starting", "running") or r.session_id not in self._last
        ]
        live = [r for r in live if r.state != "cleaned"]
        for rec in recs:
            region = rec.cloud.region
            if region not in self._prices:  # a file read: off the event loop
                try:
                    self._prices[region] = await asyncio.to_thread(session.price_table, region)
                except (OSError, tomllib.TOMLDecodeError):
                    self._prices[region] = {}
        sem = asyncio.Semaphore(4)

        async def one(rec: records.SessionRecord) -> None:
            async with sem:
                with contextlib.suppress(AwsacError, OSError):
                    await self.refresh(rec.session_id)

        await asyncio.gather(*(one(r) for r in live))
        return [self._summary(r) for r in recs]

    def _summary(self, rec: records.SessionRecord) -> SessionSummary:
        if rec.state == "cleaned":
            self._cleaned_snapshot(rec)
        snap = self._last.get(rec.session_id) or SessionSnapshot(
            rec.session_id, rec.cloud.describe(), self.now()
        )
        price = self._prices.get(rec.cloud.region, {}).get(rec.instance_type)
        created = parse_iso(rec.created_at) or self.now()
        summary = summarize(
            snap,
            created=created,
            instance_type=rec.instance_type,
            n_instances=rec.n_instances,
            hourly_price=price,
            now=self.now(),
            cleaned=rec.state == "cleaned",
        )
        summary = replace(summary, state=rec.state)
        if not snap.jobs:
            summary = replace(summary, n_jobs=rec.n_jobs)
        return summary

    async def refresh(self, session_id: str) -> SessionSnapshot:
        rec = await self._record(session_id)
        if rec.state == "cleaned":  # nothing is left in the cloud: the last known states
            return self._cleaned_snapshot(rec)
        if session_id in self._cleaning and session_id in self._last:
            return self._last[session_id]
        snap = await self._pool.refresh(rec)
        self._last[session_id] = snap
        return snap

    def _cleaned_snapshot(self, rec: records.SessionRecord) -> SessionSnapshot:
        """A cleaned session as it was: the job states cleanup kept in the record, marked
        cleaned (monitor.cleaned_snapshot, as `awsac check` shows it), with the instances of its
        last snapshot here shown terminated."""
        from awsac_tui.monitor import cleaned_snapshot

        snap = cleaned_snapshot(rec, self.now())
        last = self._last.get(rec.session_id)
        if last is not None:
            gone = tuple(
                i if i.state == "terminated" else replace(i, state="terminated", public_dns=None)
                for i in last.instances
            )
            if not rec.final_jobs:  # cleaned by an older awsac: the last states seen here
                snap = replace(snap, jobs=last.jobs)
            snap = replace(snap, instances=gone)
        self._last[rec.session_id] = snap
        return snap

    # ---- compose and start --------------------------------------------------------------

    async def compose_choices(self) -> ComposeChoices:
        return await self._on(await self._profile(), session.compose_choices)  # type: ignore[return-value]

    async def account_quota(self) -> session.Quota | None:
        return await self._on(await self._profile(), session.read_quota)  # type: ignore[return-value]

    def _spec_cloud(self, spec: SessionSpec) -> CloudProfile:
        return spec.cloud if spec.cloud != CloudProfile() else self.compose_cloud()

    async def check_references(
        self, spec: SessionSpec, jobs: Sequence[JobLine], spec_dir: Path
    ) -> list[str]:
        lines = list(jobs)
        return await self._on(  # type: ignore[return-value]
            self._spec_cloud(spec), lambda cloud: session.check_references(cloud, spec, lines)
        )

    async def start(
        self,
        spec: SessionSpec,
        jobs: Sequence[JobLine],
        spec_dir: Path,
        progress: ProgressCallback,
        confirm: ConfirmCallback,
    ) -> str | None:
        spec = replace(spec, cloud=self._spec_cloud(spec))
        ui = asyncio.get_running_loop()  # the callbacks touch widgets: they run on this loop

        def say(text: str) -> None:
            ui.call_soon_threadsafe(progress, text, None)

        def upload(done: int, total: int) -> None:
            ui.call_soon_threadsafe(
                progress,
                f"uploading the session archive ({done}/{total} bytes)",
                done / total if total else None,
            )

        declined = False

        async def run(cloud: session.Cloud) -> records.SessionRecord | None:
            nonlocal declined
            say("checking the spec and building the session archive")
            plan = await session.plan_start(
                spec_dir / "session.toml", cloud=cloud, say=say, spec=spec, jobs=list(jobs)
            )

            async def ask(question: str) -> bool:
                nonlocal declined
                ok = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(confirm(plan), ui))
                declined = not ok
                return ok

            try:
                return await session.start(plan, cloud, confirm=ask, progress=upload, say=say)
            except AwsacError:
                if declined:
                    return None
                raise

        rec = await self._on(spec.cloud, run)
        if rec is None:
            return None
        assert isinstance(rec, records.SessionRecord)
        self._records[rec.session_id] = rec
        return rec.session_id

    # ---- verbs on one session -----------------------------------------------------------

    async def kill_job(self, session_id: str, jobnr: int) -> None:
        rec = await self._record(session_id)
        await self._on(rec.cloud, lambda cloud: session.kill(rec, jobnr, cloud=cloud))

    async def retry(self, session_id: str, jobs: Sequence[int] | None = None) -> list[int]:
        rec = await self._record(session_id)
        verb = getattr(session, "retry", None)
        if verb is None:
            raise AwsacError(
                "retrying lost jobs needs `awsac retry`, which this version of awsac lacks "
                "(update awsac, or start the jobs again in a new session)"
            )
        wanted = list(jobs) if jobs else None
        result = await self._on(rec.cloud, lambda cloud: verb(rec, wanted, cloud=cloud))
        self._pool.forget(session_id)  # the record gained a reservation
        await self._record(session_id, reload=True)
        numbers = list(getattr(result, "jobs", ()) or ())
        if not numbers:  # say why: each skipped job's reason
            text = result.text() if hasattr(result, "text") else "no job to retry"  # type: ignore[attr-defined]
            raise AwsacError(text)
        return [int(n) for n in numbers]

    def instance_state(self, session_id: str, instance_id: str) -> str | None:
        snap = self._last.get(session_id)
        inst = snap.instance(instance_id) if snap else None
        return inst.state if inst else None

    def session_state(self, session_id: str) -> str:
        rec = self._records.get(session_id)
        return rec.state if rec else ""

    def retry_policy(self, session_id: str) -> tuple[int, bool]:
        rec = self._records.get(session_id)
        return (
            int(getattr(rec, "max_attempts", None) or DEFAULT_MAX_ATTEMPTS),
            bool(getattr(rec, "retry_failed", False)),
        )

    def results_location(self, session_id: str, jobnr: int) -> str:
        rec = self._records.get(session_id)
        bucket = rec.bucket if rec else "?"
        return f"s3://{bucket}/{s3layout.results_key(session_id, jobnr)}"

    async def terminate_instance(self, session_id: str, instance_id: str) -> None:
        rec = await self._record(session_id)
        await self._on(rec.cloud, lambda cloud: session.terminate(rec, instance_id, cloud=cloud))

    async def console_output(self, session_id: str, instance_id: str) -> str:
        rec = await self._record(session_id)
        return await self._on(  # type: ignore[return-value]
            rec.cloud, lambda cloud: session.console_output(rec, instance_id, cloud=cloud)
        )

    async def job_log(self, session_id: str, jobnr: int) -> str:
        rec = await self._record(session_id)
        text, _live = await self._on(  # type: ignore[misc]
            rec.cloud, lambda cloud: session.job_log(rec, jobnr, cloud=cloud)
        )
        return text

    async def results(self, session_id: str, dest: Path, progress: ProgressCallback) -> list[Path]:
        rec = await self._record(session_id)
        ui = asyncio.get_running_loop()

        def bytes_done(done: int, total: int) -> None:
            ui.call_soon_threadsafe(
                progress, f"{done}/{total} bytes", done / total if total else None
            )

        def say(text: str) -> None:
            ui.call_soon_threadsafe(progress, text, None)

        downloads = await self._on(
            rec.cloud,
            lambda cloud: session.results(rec, dest, progress=bytes_done, say=say, cloud=cloud),
        )
        return [
            d.path
            for d in downloads  # type: ignore[attr-defined]
            if d.path is not None and d.action != "refused"
        ]

    async def cleanup_plan(self, session_id: str) -> str:
        rec = await self._record(session_id)
        plan = await self._on(rec.cloud, lambda cloud: session.plan_cleanup(rec, cloud=cloud))
        self._cleanup_plans[session_id] = plan  # type: ignore[assignment]
        return plan.describe()  # type: ignore[attr-defined]

    async def cleanup(self, session_id: str) -> list[str]:
        rec = await self._record(session_id)
        fresh = await self._on(rec.cloud, lambda cloud: session.plan_cleanup(rec, cloud=cloud))
        shown = self._cleanup_plans.pop(session_id, fresh)
        self._cleaning.add(session_id)  # refreshes meanwhile show the last known job states
        try:  # what the user saw named (outputs never downloaded, running jobs) is confirmed
            report = await self._on(
                rec.cloud,
                lambda cloud: session.cleanup(
                    rec,
                    cloud=cloud,
                    plan=fresh,
                    force=set(fresh.unfetched) <= set(shown.unfetched),  # type: ignore[attr-defined]
                    kill_running=set(fresh.running_jobs) <= set(shown.running_jobs),  # type: ignore[attr-defined]
                ),
            )
        finally:
            self._cleaning.discard(session_id)
        self._pool.forget(session_id)
        await self._record(session_id, reload=True)
        return [*report.removed, *(f"kept {k}" for k in report.kept), report.summary]  # type: ignore[attr-defined]

    async def ssh_command(self, session_id: str, instance_id: str) -> list[str]:
        rec = await self._record(session_id)
        return await self._on(  # type: ignore[return-value]
            rec.cloud, lambda cloud: session.ssh_command(rec, instance_id, cloud=cloud)
        )


async def _opened(cloud: session.Cloud) -> None:
    """Nothing: the pool opened (or failed to open) the Cloud for the profile."""
