"""The live view of one session: instances, volumes and jobs tables, a header and a timeline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from awsac_agent.status import TERMINAL, count_statuses
from rich.style import Style
from rich.text import Span, Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Input, Label, Static

from awsac_tui.ui.screens.base import PollingScreen, TitleBar, footer, show_prompt
from awsac_tui.ui.screens.modals import ConfirmModal
from awsac_tui.ui.widgets.keyed_table import KeyedTable
from awsac_tui.ui.widgets.status import (
    counts_text,
    instance_state_text,
    progress_text,
    status_text,
)
from awsac_tui.ui.widgets.timeline import Timeline
from awsac_tui.views import INSTANCE_UP, InstanceView, JobView, SessionSnapshot, VolumeView

# Cells change in place without resizing columns (update_width=False), so every column whose
# content grows after its first row gets a fixed width. The first three columns keep their
# places (tests and the focused-row actions read them); ``*_DROP`` columns hide, in that order,
# when the terminal is too narrow for all of them.
INSTANCE_COLUMNS = [  # what matters most first: narrow terminals see the left columns
    ("id", "instance", 19),
    ("li", "LI", 3),
    ("state", "state", 13),
    ("zone", "zone", None),  # us-east-1a, ap-southeast-2a: known when the row appears
    ("uptime", "uptime", 7),
    ("dns", "public DNS", None),
]
INSTANCE_DROP = ("dns",)
VOLUME_COLUMNS = [
    ("id", "volume", 21),
    ("kind", "kind", 4),
    ("state", "state", 9),
    ("instance", "on", 5),
    ("size", "GiB", 4),
    ("snapshot", "snapshot", 22),
    ("device", "device", 9),
]
VOLUME_DROP = ("device", "size", "snapshot")
JOB_COLUMNS = [
    ("jobnr", "job", 4),
    ("script", "script", None),
    ("status", "status", 16),
    ("rc", "rc", 3),
    ("li", "LI", 3),
    ("started", "started", 8),
    ("runtime", "run time", 8),
    ("attempt", "try", 3),
    ("instance", "instance", 19),
    ("snapshot", "snapshot", 22),
]
JOB_DROP = ("snapshot", "instance", "attempt")
ROOT_DEVICES = frozenset({"/dev/sda1", "/dev/xvda", "/dev/sda", "/dev/nvme0n1"})


def format_duration(seconds: float | None) -> str:
    """1m52s, 2h03m, 45s; empty for None."""
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def instance_cells(inst: InstanceView, now: datetime, gone: datetime | None = None) -> tuple:
    """An instances-table row; the uptime stops when the instance went (``gone``)."""
    alive = inst.state in INSTANCE_UP
    end = now if alive else (inst.ended_at or gone)
    uptime = (
        format_duration((end - inst.launch_time).total_seconds())
        if inst.launch_time and end is not None
        else ""
    )
    return (
        inst.instance_id,
        "" if inst.launchindex is None else str(inst.launchindex),
        instance_state_text(inst.state, inst.silent),
        inst.zone or "",
        uptime,
        inst.public_dns or "",
    )


def volume_kind(vol: VolumeView, job_snapshots: set[str]) -> str:
    """``job``: made by the agent from a jobs.cfg snapshot; ``root``: an instance's boot disk."""
    if vol.snapshot and vol.snapshot in job_snapshots and vol.device not in ROOT_DEVICES:
        return "job"
    return "root"


def volume_cells(
    vol: VolumeView, launchindex: dict[str, int | None], job_snapshots: set[str]
) -> tuple:
    """A volume row; the instance it is attached to shows as its launch index (LI n)."""
    on = ""
    if vol.instance_id:
        li = launchindex.get(vol.instance_id)
        on = f"LI {li}" if li is not None else vol.instance_id
    kind = volume_kind(vol, job_snapshots)
    return (
        vol.volume_id,
        Text(kind, style="grey50" if kind == "root" else "bold"),
        vol.state,
        on,
        "" if vol.size_gib is None else str(vol.size_gib),
        vol.snapshot or "-",
        vol.device or "",
    )


def volume_order(cells: tuple) -> tuple[int, str, bool]:
    """Sort key of a volume row from its ``on`` and ``kind`` cells: by LI, root first."""
    on, kind = str(cells[0]), str(cells[1])
    li = int(on[3:]) if on.startswith("LI ") and on[3:].isdigit() else 1 << 30
    return li, on, kind != "root"


def job_end(job: JobView, gone: datetime | None) -> datetime | None:
    """When the job's clock stops: its run end; else ``gone`` (when its instance went, or when
    the job was first seen ended without an end time: lost, killed); None: it still runs."""
    if job.runendtime is not None and job.status != "running":
        return job.runendtime
    return gone


def job_cells(job: JobView, now: datetime, gone: datetime | None = None) -> tuple:
    """A jobs-table row; ``gone``: when the job's instance ended (its clock stops there)."""
    if job.runstarttime is None:
        started, runtime = "", ""
    else:
        end = job_end(job, gone)
        started = job.runstarttime.strftime("%H:%M:%S")
        runtime = format_duration(((end or now) - job.runstarttime).total_seconds())
    status = status_text(job.status)
    said = job.error and not (job.status == "killed" and job.error.startswith("killed"))
    if said and job.status in ("failed", "lost", "killed"):
        status.append(f" {job.error}", style="red")  # cut here; enter shows the whole cause
    return (
        str(job.jobnr),
        job.shellscript or "",
        status,
        "" if job.returncode is None else str(job.returncode),
        "" if job.launchindex is None else str(job.launchindex),
        started,
        runtime,
        str(job.attempt) if job.attempt > 1 or job.history else "",
        job.instance_id or "",
        job.snapshot or "-",
    )


class SessionScreen(PollingScreen):
    """Live tables of one session, refreshed by one polling worker.

    Keys act on the focused table's rows: on jobs enter (detail), l (log), k (kill), R (retry);
    on instances c (console), s (ssh), t (terminate); the footer shows those that apply.
    """

    BINDINGS = [
        Binding("escape", "back", "back"),
        Binding("enter", "detail", "detail", priority=False),
        Binding("l", "log", "log"),
        Binding("c", "console", "console"),
        Binding("s", "ssh", "ssh"),
        Binding("t", "terminate", "terminate"),
        Binding("k", "kill", "kill"),
        Binding("R", "retry", "retry lost", show=False),
        Binding("A", "auto_retry", "auto-retry on/off", show=False),
        Binding("r", "results", "results"),
        Binding("x", "cleanup", "cleanup", show=False),
        Binding("slash", "filter", "filter", key_display="/"),
        Binding("ctrl+r", "force_refresh", "refresh", show=False),
        Binding("q", "app.quit", "quit", show=False),
    ]
    JOB_ACTIONS = frozenset({"detail", "log", "kill", "retry"})
    INSTANCE_ACTIONS = frozenset({"terminate"})
    ROW_INSTANCE_ACTIONS = frozenset({"console", "ssh"})  # on instances, volumes or a job's

    # below 150 columns the instances and volumes tables stack (each gets the full width)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (150, "-wide")]
    # below 30 rows the instances, volumes and timeline get fewer rows, the jobs table more
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]

    def __init__(self, session_id: str) -> None:
        super().__init__(id="session")
        self.session_id = session_id
        self.snapshot: SessionSnapshot | None = None
        self.job_filter = ""
        self.state = ""
        self._gone: dict[str, datetime] = {}
        """When an instance (id) or an ended job (job:N) was first seen gone, for stopped clocks."""
        self._retried: set[tuple[int, int]] = set()
        """(job, attempt) the auto-retry has asked for already."""
        self._jobs_of: tuple[JobView, ...] | None = None  # the jobs the key list was made of
        self._filter_of = ""
        self._job_by_key: dict[str, JobView] = {}
        self._job_keys: list[str] = []

    def compose(self) -> ComposeResult:
        yield TitleBar(f" {self.session_id}", id="titlebar")
        yield Static("", id="notices", markup=False)
        with Horizontal(id="top"):
            yield KeyedTable(INSTANCE_COLUMNS, drop=INSTANCE_DROP, id="instances")
            yield KeyedTable(VOLUME_COLUMNS, drop=VOLUME_DROP, id="volumes")
        yield KeyedTable(JOB_COLUMNS, drop=JOB_DROP, id="jobs")
        with Horizontal(id="job-filter-bar", classes="prompt-bar", disabled=True):
            yield Label("filter jobs /", classes="prompt")
            yield Input(
                placeholder="words of status, script, LI or instance; esc clears",
                id="job-filter",
                compact=True,
            )
        yield Timeline(id="timeline")
        yield footer()

    def on_mount(self) -> None:
        self.query_one("#instances").border_title = "instances"
        self.query_one("#volumes").border_title = "volumes"
        self.query_one("#jobs").border_title = "jobs"
        self.query_one("#timeline").border_title = "timeline"
        self.query_one("#notices").display = False
        self.query_one("#jobs").focus()
        super().on_mount()

    async def fetch(self) -> SessionSnapshot:
        return await self.awsac.backend.refresh(self.session_id)

    def next_interval(self) -> float:
        snap = self.snapshot
        if self.cleaned:
            return self.awsac.scale_interval(60.0)
        if snap is None or not snap.instances or any(i.state == "pending" for i in snap.instances):
            return self.awsac.scale_interval(1.0)
        alive = any(i.state in INSTANCE_UP for i in snap.instances)
        if not alive and all(j.status in TERMINAL for j in snap.jobs):
            return self.awsac.scale_interval(15.0)
        if any(j.status == "pending" for j in snap.jobs):
            return self.awsac.scale_interval(2.0)
        return self.awsac.scale_interval(5.0)

    @property
    def cleaned(self) -> bool:
        return self.state == "cleaned"

    # ---- stopped clocks -----------------------------------------------------------------

    def _seen_gone(self, key: str, when: datetime) -> datetime:
        return self._gone.setdefault(key, when)

    def instance_gone(self, inst: InstanceView | None, now: datetime) -> datetime | None:
        """When ``inst`` went (EC2's time, else when first seen gone); None while it is up."""
        if inst is None or inst.state in INSTANCE_UP:
            return None
        return inst.ended_at or self._seen_gone(inst.instance_id, now)

    def job_stop(
        self, job: JobView, by_id: dict[str, InstanceView], now: datetime
    ) -> datetime | None:
        gone = self.instance_gone(by_id.get(job.instance_id or ""), now)
        if job.runendtime is not None and job.status != "running":
            return job.runendtime
        if gone is not None and job.runstarttime is not None:
            return max(gone, job.runstarttime)
        if job.status in TERMINAL and job.runstarttime is not None:
            return self._seen_gone(f"job:{job.jobnr}:{job.attempt}", now)
        return None

    def apply(self, data: object) -> None:
        snap: SessionSnapshot = data  # type: ignore[assignment]
        self.snapshot = snap
        self.state = self.awsac.backend.session_state(self.session_id)
        now = self.awsac.backend.now()
        lis = {i.instance_id: i.launchindex for i in snap.instances}
        job_snapshots = {j.snapshot for j in snap.jobs if j.snapshot}
        with self.app.batch_update():
            self.query_one("#instances", KeyedTable).sync(
                {
                    i.instance_id: instance_cells(i, now, self.instance_gone(i, now))
                    for i in snap.instances
                }
            )
            volumes = self.query_one("#volumes", KeyedTable)
            added, _, _ = volumes.sync(
                {v.volume_id: volume_cells(v, lis, job_snapshots) for v in snap.volumes}
            )
            if added:  # each instance's root volume, then its job volumes
                volumes.sort("instance", "kind", key=volume_order)
            self.sync_jobs(now)
            self.query_one(Timeline).update_snapshot(snap, now)
            self.update_header()
        if self.app.auto_retry and not self.cleaned:  # type: ignore[attr-defined]
            self.auto_retry_lost()

    def job_matches(self, job: JobView) -> bool:
        """Whether ``job`` passes the filter (every word must match status, script, LI or id)."""
        if not self.job_filter:
            return True
        hay = " ".join(
            str(v)
            for v in (
                job.status,
                job.shellscript,
                f"LI {job.launchindex}",
                job.instance_id,
                job.jobnr,
            )
            if v is not None
        ).lower()
        return all(word in hay for word in self.job_filter.lower().split())

    def sync_jobs(self, now: datetime) -> None:
        """Give the jobs table the (filtered) job order; it makes the cells of the rows it
        paints, so a 10,000-job session costs what its visible rows cost (run times included)."""
        snap = self.snapshot
        assert snap is not None
        if self._jobs_of is not snap.jobs or self._filter_of != self.job_filter:
            self._jobs_of, self._filter_of = snap.jobs, self.job_filter
            self._job_by_key = {str(j.jobnr): j for j in snap.jobs}
            self._job_keys = [str(j.jobnr) for j in snap.jobs if self.job_matches(j)]
        by_key = self._job_by_key
        by_id = {i.instance_id: i for i in snap.instances}

        def cells(key: str) -> tuple:
            job = by_key[key]
            return job_cells(job, now, self.job_stop(job, by_id, now))

        self.query_one("#jobs", KeyedTable).sync_source(self._job_keys, cells)

    def action_filter(self) -> None:
        show_prompt(self.query_one("#job-filter-bar"), True)
        self.query_one("#job-filter", Input).focus()

    @on(Input.Changed, "#job-filter")
    def job_filter_changed(self, event: Input.Changed) -> None:
        self.job_filter = event.value.strip()
        if self.snapshot is not None:
            with self.app.batch_update():
                self.sync_jobs(self.awsac.backend.now())

    @on(Input.Submitted, "#job-filter")
    def job_filter_done(self) -> None:
        self.query_one("#jobs", KeyedTable).focus()

    def update_header(self) -> None:
        snap = self.snapshot
        if snap is None:
            return
        counts = count_statuses(j.status for j in snap.jobs)
        done = sum(n for s, n in counts if s in TERMINAL)
        types = {i.instance_type for i in snap.instances if i.instance_type}
        alive = sum(1 for i in snap.instances if i.state in INSTANCE_UP)
        wide = self.size.width >= 100
        t = Text(f" {self.session_id} ", style="bold")
        t.append_text(progress_text(done, len(snap.jobs), 10 if wide else 0))
        jobs_table = self.query_one("#jobs", KeyedTable)
        if wide:
            t.append(f"  {len(snap.jobs)} jobs: ")
            t.append_text(counts_text(counts))
            jobs_table.border_title = "jobs"
        else:  # the counts go on the jobs table's border, where they are never cut off
            t.append(f"  {len(snap.jobs)} jobs")
            title = Text("jobs: ")
            title.append_text(counts_text(counts))
            title.spans[:] = [  # rich Style objects: Textual does not know every rich colour name
                Span(
                    sp.start,
                    sp.end,
                    Style.parse(sp.style) if isinstance(sp.style, str) else sp.style,
                )
                for sp in title.spans
            ]
            jobs_table.border_title = title
        if self.cleaned:
            t.append("  cleaned", style="bold grey50 reverse")
            t.append(" (last known states)", style="grey50")
        else:
            kind = "/".join(sorted(types)) if wide else ""  # the type is on the sessions screen
            t.append(f"  {kind}{' ' if kind else ''}{alive}/{len(snap.instances)} up")
            if self.app.auto_retry:  # type: ignore[attr-defined]
                t.append("  auto-retry", style="cyan")
            t.append(f"  ↻ {self.interval:g}s", style="grey50")
        self.query_one(TitleBar).update(t)
        notices = self.query_one("#notices", Static)
        notices.display = bool(snap.notices)
        notices.update(" ⚠ " + " · ".join(snap.notices) if snap.notices else "")

    # ---- the focused row ----------------------------------------------------------------

    def focused_table(self) -> str:
        """``jobs``, ``instances`` or ``volumes``: whose rows the keys act on."""
        focused = self.app.focused
        if isinstance(focused, KeyedTable) and focused.id in ("instances", "volumes"):
            return focused.id
        return "jobs"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        allowed = super().check_action(action, parameters)
        if allowed is not True:
            return allowed
        if isinstance(self.app.focused, Input) and action in self.JOB_ACTIONS | {"detail"}:
            return False
        table = self.focused_table()
        if action in self.JOB_ACTIONS and table != "jobs":
            return False  # hidden: these act on jobs, and no job row is focused
        if action in self.INSTANCE_ACTIONS and table != "instances":
            return False
        if self.cleaned and action in ("console", "ssh", "terminate", "kill", "retry"):
            return False  # nothing is left in the cloud
        return True

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()

    def focused_job(self) -> JobView | None:
        if self.snapshot is None:
            return None
        table = self.query_one("#jobs", KeyedTable)
        key = table.cursor_key
        if key is None:
            return None
        return self._job_by_key.get(key)

    def focused_instance(self) -> InstanceView | None:
        """The instance of the focused row: the instances table's, the volume's, or the job's."""
        if self.snapshot is None:
            return None
        focused = self.app.focused
        iid: str | None = None
        if isinstance(focused, KeyedTable) and focused.id == "instances":
            iid = focused.cursor_key
        elif isinstance(focused, KeyedTable) and focused.id == "volumes":
            vkey = focused.cursor_key
            vol = next((v for v in self.snapshot.volumes if v.volume_id == vkey), None)
            iid = vol.instance_id if vol else None
        else:
            job = self.focused_job()
            iid = job.instance_id if job else None
        return self.snapshot.instance(iid)

    # ---- actions ------------------------------------------------------------------------

    def action_back(self) -> None:
        if self.query_one("#job-filter-bar").display:  # esc first clears the job filter
            self.query_one("#job-filter", Input).value = ""
            show_prompt(self.query_one("#job-filter-bar"), False)
            self.query_one("#jobs", KeyedTable).focus()
            return
        self.app.pop_screen()

    @on(KeyedTable.RowSelected, "#jobs")
    def job_selected(self) -> None:
        self.action_detail()

    @on(KeyedTable.RowSelected, "#instances")
    def instance_selected(self) -> None:
        self.action_console()

    def action_detail(self) -> None:
        from awsac_tui.ui.screens.detail import JobDetailScreen

        job = self.focused_job()
        if job is None or self.snapshot is None:
            self.notify("no job selected", severity="warning")
            return
        by_id = {i.instance_id: i for i in self.snapshot.instances}
        now = self.awsac.backend.now()
        self.app.push_screen(
            JobDetailScreen(self.session_id, job, by_id, self.job_stop(job, by_id, now))
        )

    def action_log(self) -> None:
        from awsac_tui.ui.screens.log import LogScreen

        job = self.focused_job()
        if job is None:
            self.notify("no job selected", severity="warning")
            return
        self.app.push_screen(LogScreen.for_job(self.session_id, job))

    def action_console(self) -> None:
        from awsac_tui.ui.screens.log import LogScreen

        inst = self.focused_instance()
        if inst is None:
            self.notify("this row has no instance yet", severity="warning")
            return
        self.app.push_screen(LogScreen.for_console(self.session_id, inst.instance_id))

    def action_ssh(self) -> None:
        inst = self.focused_instance()
        if inst is None:
            self.notify("this row has no instance yet", severity="warning")
            return
        if inst.state not in INSTANCE_UP:
            self.notify(f"{inst.instance_id} is {inst.state}: no shell", severity="warning")
            return
        self.awsac.run_ssh(self.session_id, inst.instance_id)

    def action_kill(self) -> None:
        job = self.focused_job()
        if job is None:
            return
        if job.status in TERMINAL:
            self.notify(f"job {job.jobnr} has already ended ({job.status})", severity="warning")
            return

        self._confirm_then(
            ConfirmModal(
                "kill job",
                f"Kill job {job.jobnr} ({job.shellscript}, {job.status})?\n"
                "Its output so far is uploaded and it is marked killed.",
                yes="Kill",
                danger=True,
            ),
            f"kill job {job.jobnr}",
            lambda: self.awsac.backend.kill_job(self.session_id, job.jobnr),
            f"kill requested for job {job.jobnr}",
        )

    def lost_jobs(self) -> list[JobView]:
        return [j for j in self.snapshot.jobs if j.status == "lost"] if self.snapshot else []

    def action_retry(self) -> None:
        """Run the focused job again if it is lost, else every lost job of the session."""
        job = self.focused_job()
        max_attempts, retry_failed = self.awsac.backend.retry_policy(self.session_id)
        retryable = ("lost", "failed") if retry_failed else ("lost",)
        if job is not None and job.status in retryable:
            jobs = [job]
        else:
            jobs = self.lost_jobs()
        if not jobs:
            self.notify("no lost job to retry", severity="warning")
            return
        numbers = [j.jobnr for j in jobs]
        over = [j.jobnr for j in jobs if j.attempt >= max_attempts]
        text = ", ".join(str(n) for n in numbers)
        question = (
            f"Run job{'s' if len(numbers) > 1 else ''} {text} again on a new instance?\n"
            "Each attempt's log and results are kept."
        )
        if over:
            question += (
                f"\n(job {', '.join(map(str, over))} had {max_attempts} attempts: the most "
                "max_attempts allows; this is one more)"
            )
        self._confirm_then(
            ConfirmModal("retry", question, yes="Retry"),
            f"retry job {text}",
            lambda: self.awsac.backend.retry(self.session_id, numbers),
            f"retrying job {text}",
        )

    def action_auto_retry(self) -> None:
        self.app.auto_retry = not self.app.auto_retry  # type: ignore[attr-defined]
        max_attempts, _ = self.awsac.backend.retry_policy(self.session_id)
        self.notify(
            f"auto-retry on: lost jobs run again, up to {max_attempts} attempts"
            if self.app.auto_retry  # type: ignore[attr-defined]
            else "auto-retry off"
        )
        self.update_header()
        if self.app.auto_retry:  # type: ignore[attr-defined]
            self.auto_retry_lost()

    def auto_retry_lost(self) -> None:
        """With auto-retry on: ask once per (job, attempt) for lost jobs under max_attempts."""
        max_attempts, retry_failed = self.awsac.backend.retry_policy(self.session_id)
        retryable = ("lost", "failed") if retry_failed else ("lost",)
        jobs = [
            j
            for j in (self.snapshot.jobs if self.snapshot else ())
            if j.status in retryable
            and j.attempt < max_attempts
            and (j.jobnr, j.attempt) not in self._retried
        ]
        if not jobs:
            return
        self._retried.update((j.jobnr, j.attempt) for j in jobs)
        numbers = [j.jobnr for j in jobs]
        text = ", ".join(map(str, numbers))
        self._run_verb(
            f"auto-retry of job {text}",
            lambda: self.awsac.backend.retry(self.session_id, numbers),
            f"auto-retry: job {text} run again",
        )

    def action_terminate(self) -> None:
        inst = self.focused_instance()
        if inst is None:
            return
        self._confirm_then(
            ConfirmModal(
                "terminate instance",
                f"Terminate instance {inst.instance_id} (launch index {inst.launchindex})?\n"
                "Its unfinished jobs will end up lost.",
                yes="Terminate",
                danger=True,
            ),
            f"terminate {inst.instance_id}",
            lambda: self.awsac.backend.terminate_instance(self.session_id, inst.instance_id),
            f"terminating {inst.instance_id}",
        )

    def _confirm_then(
        self,
        question: ConfirmModal,
        what: str,
        verb: Callable[[], Awaitable[object]],
        done: str,
    ) -> None:
        """Ask ``question``; on yes run ``verb`` in a worker, say ``done`` and refresh."""

        def answered(yes: bool | None) -> None:
            if yes:
                self._run_verb(what, verb, done)

        self.app.push_screen(question, answered)

    @work(group="verbs", exit_on_error=False)
    async def _run_verb(self, what: str, verb: Callable[[], Awaitable[object]], done: str) -> None:
        try:
            await verb()
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.awsac.report_error(what, exc)
            return
        self.notify(done)
        self.action_force_refresh()

    def action_results(self) -> None:
        self.awsac.get_results(self.session_id)

    def action_cleanup(self) -> None:
        self.awsac.cleanup_session(self.session_id, after=self.action_force_refresh)
