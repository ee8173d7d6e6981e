"""LiveBackend: the Backend on the real client verbs (session/, monitor.py, records.py).

One Cloud per cloud profile, opened on first use on the app's event loop and closed with the app.
No AWS client is touched here: every cloud call goes through a session verb or the Monitor.
"""

from __future__ import annotations

import asyncio
import contextlib
import tomllib
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from awsac_agent.errors import AwsacError
from awsac_agent.jobscfg import JobLine
from awsac_agent.status import parse_iso

from awsac_tui import records, session
from awsac_tui.monitor import Monitor
from awsac_tui.session import ComposeChoices
from awsac_tui.spec import CloudProfile, SessionSpec
from awsac_tui.ui.backend import ConfirmCallback, ProgressCallback, SessionSummary, summarize
from awsac_tui.views import SessionSnapshot


class LiveBackend:
    """The Backend of the real client: session records, the Monitor and the session verbs."""

    def __init__(self, compose_profile: CloudProfile | None = None) -> None:
        self.compose_profile = compose_profile
        self._stack = AsyncExitStack()
        self._clouds: dict[CloudProfile, session.Cloud] = {}
        self._monitors: dict[str, Monitor] = {}
        self._last: dict[str, SessionSnapshot] = {}
        self._records: dict[str, records.SessionRecord] = {}
        self._lock = asyncio.Lock()

    # ---- plumbing -----------------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.now(UTC)

    def cloud_description(self) -> str:
        prof = self.compose_profile or session.default_profile()
        return prof.describe()

    async def _cloud(self, profile: CloudProfile) -> session.Cloud:
        async with self._lock:
            cloud = self._clouds.get(profile)
            if cloud is None:
                cloud = await self._stack.enter_async_context(session.Cloud(profile))
                self._clouds[profile] = cloud
            return cloud

    async def aclose(self) -> None:
        self._clouds.clear()
        self._monitors.clear()
        await self._stack.aclose()

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
        sem = asyncio.Semaphore(4)

        async def one(rec: records.SessionRecord) -> None:
            async with sem:
                with contextlib.suppress(AwsacError, OSError):
                    await self.refresh(rec.session_id)

        await asyncio.gather(*(one(r) for r in live))
        return [self._summary(r) for r in recs]

    def _summary(self, rec: records.SessionRecord) -> SessionSummary:
        snap = self._last.get(rec.session_id) or SessionSnapshot(
            rec.session_id, rec.cloud.describe(), self.now()
        )
        try:
            price = session.price_table(rec.cloud.region).get(rec.instance_type)
        except (OSError, tomllib.TOMLDecodeError):
            price = None
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
        if not snap.jobs:
            summary = replace(summary, n_jobs=rec.n_jobs)
        return summary

    async def refresh(self, session_id: str) -> SessionSnapshot:
        monitor = self._monitors.get(session_id)
        if monitor is None:
            rec = await self._record(session_id)
            monitor = Monitor(rec, await self._cloud(rec.cloud))
            self._monitors[session_id] = monitor
        snap = await monitor.refresh()
        self._last[session_id] = snap
        return snap

    # ---- compose and start --------------------------------------------------------------

    async def compose_choices(self) -> ComposeChoices:
        profile = self.compose_profile or session.default_profile()
        cloud = await self._cloud(profile)
        return await session.compose_choices(cloud)

    async def start(
        self,
        spec: SessionSpec,
        jobs: Sequence[JobLine],
        spec_dir: Path,
        progress: ProgressCallback,
        confirm: ConfirmCallback,
    ) -> str | None:
        if self.compose_profile is not None and spec.cloud == CloudProfile():
            spec = replace(spec, cloud=self.compose_profile)
        elif spec.cloud == CloudProfile():
            spec = replace(spec, cloud=session.default_profile())
        cloud = await self._cloud(spec.cloud)

        def say(text: str) -> None:
            progress(text, None)

        progress("checking the spec and building the session archive", None)
        plan = await session.plan_start(
            spec_dir / "session.toml", cloud=cloud, say=say, spec=spec, jobs=list(jobs)
        )
        declined = False

        async def ask(question: str) -> bool:
            nonlocal declined
            ok = await confirm(plan)
            declined = not ok
            return ok

        def upload(done: int, total: int) -> None:
            progress(
                f"uploading the session archive ({done}/{total} bytes)",
                done / total if total else None,
            )

        try:
            rec = await session.start(plan, cloud, confirm=ask, progress=upload, say=say)
        except AwsacError:
            if declined:
                return None
            raise
        self._records[rec.session_id] = rec
        return rec.session_id

    # ---- verbs on one session -----------------------------------------------------------

    async def kill_job(self, session_id: str, jobnr: int) -> None:
        rec = await self._record(session_id)
        await session.kill(rec, jobnr, cloud=await self._cloud(rec.cloud))

    async def terminate_instance(self, session_id: str, instance_id: str) -> None:
        rec = await self._record(session_id)
        await session.terminate(rec, instance_id, cloud=await self._cloud(rec.cloud))

    async def console_output(self, session_id: str, instance_id: str) -> str:
        rec = await self._record(session_id)
        return await session.console_output(rec, instance_id, cloud=await self._cloud(rec.cloud))

    async def job_log(self, session_id: str, jobnr: int) -> str:
        rec = await self._record(session_id)
        text, _live = await session.job_log(rec, jobnr, cloud=await self._cloud(rec.cloud))
        return text

    async def results(self, session_id: str, dest: Path, progress: ProgressCallback) -> list[Path]:
        rec = await self._record(session_id)

        def bytes_done(done: int, total: int) -> None:
            progress(f"{done}/{total} bytes", done / total if total else None)

        downloads = await session.results(
            rec,
            dest,
            progress=bytes_done,
            say=lambda text: progress(text, None),
            cloud=await self._cloud(rec.cloud),
        )
        return [d.path for d in downloads]

    async def cleanup(self, session_id: str) -> list[str]:
        rec = await self._record(session_id)
        removed = await session.cleanup(rec, cloud=await self._cloud(rec.cloud))
        self._monitors.pop(session_id, None)
        await self._record(session_id, reload=True)
        return removed

    async def ssh_command(self, session_id: str, instance_id: str) -> list[str]:
        rec = await self._record(session_id)
        return await session.ssh_command(rec, instance_id, cloud=await self._cloud(rec.cloud))
