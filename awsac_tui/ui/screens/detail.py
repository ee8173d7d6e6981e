"""One job in full: status and the whole cause, every attempt with its times and instance, the
snapshot, the last lines of its log, and where its results are (Enter on a job)."""

from __future__ import annotations

from datetime import datetime

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from awsac_tui.ui.host import AwsacHost
from awsac_tui.ui.screens.base import TitleBar, footer
from awsac_tui.ui.widgets.status import status_text
from awsac_tui.views import INSTANCE_UP, InstanceView, JobView

LAST_LINES = 12
NOT_STARTED = "Not started yet: the job has no output."


def _hms(t: datetime | None) -> str:
    return t.strftime("%H:%M:%S") if t else "-"


def _duration(start: datetime | None, end: datetime | None, now: datetime) -> str:
    from awsac_tui.ui.screens.session import format_duration

    if start is None:
        return "-"
    return format_duration(((end or now) - start).total_seconds())


def detail_text(
    job: JobView,
    instances: dict[str, InstanceView],
    stop: datetime | None,
    now: datetime,
    results: str,
) -> Table:
    """Everything known about one job, as ``label  value`` rows (values wrap, never cut)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="grey50", justify="right", no_wrap=True)
    grid.add_column(ratio=1, overflow="fold")

    def row(label: str, value: str | Text, style: str = "") -> None:
        grid.add_row(label, value if isinstance(value, Text) else Text(value, style=style))

    status = Text()
    status.append_text(status_text(job.status))  # styled as a span: no bar across the cell
    if job.returncode is not None:
        status.append(f"  (exit code {job.returncode})", style="")
    row("status", status)
    if job.error:
        row("cause", job.error, "red" if job.status in ("failed", "lost") else "")
    row("script", job.shellscript or "?")
    row("snapshot", job.snapshot or "- (no software volume)")
    inst = instances.get(job.instance_id or "")
    where = job.instance_id or "not yet assigned"
    if job.launchindex is not None:
        where += f"  LI {job.launchindex}"
    if inst is not None:
        where += f"  {inst.state}"
        if inst.state_reason and inst.state not in INSTANCE_UP:
            where += f" ({inst.state_reason})"
    row("instance", where)
    if job.results == "none":
        row("results", "none: the job wrote no results.tar.bz2")
    elif job.status == "finished":
        row("results", results)
    elif job.status in ("failed", "killed"):
        row("results", f"{results} (if the job wrote results.tar.bz2)")
    elif job.status == "lost":
        row("results", "none: the job did not end (a retry writes them)")
    else:
        row("results", f"{results} (once the job ends)")

    attempts = Table(box=None, padding=(0, 1), show_edge=False, header_style="grey50")
    for name, justify in (
        ("#", "right"),
        ("status", "left"),
        ("instance", "left"),
        ("start", "right"),
        ("end", "right"),
        ("run", "right"),
    ):
        attempts.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    causes: list[tuple[int, str]] = []
    for a in (*job.history, None):
        if a is None:  # the current attempt
            number, st, iid, start, end = (
                job.attempt,
                job.status,
                job.instance_id,
                job.runstarttime,
                stop,
            )
            error = None
        else:
            number, st, iid, start, end = (
                a.attempt,
                a.status,
                a.instance_id,
                a.runstarttime,
                a.runendtime,
            )
            error = a.error
        attempts.add_row(
            str(number),
            Text().append_text(status_text(st)),
            iid or "-",
            _hms(start),
            _hms(end),
            _duration(start, end, now),
        )
        if error:
            causes.append((number, error))
    grid.add_row("", "")
    grid.add_row("attempts", attempts)
    for number, error in causes:  # the earlier attempts' causes, whole
        grid.add_row(f"cause of {number}", Text(error, style="red"))
    return grid


class JobDetailScreen(Screen):
    """A job's whole story; l opens its log, esc goes back."""

    BINDINGS = [
        Binding("escape", "back", "back"),
        Binding("l", "log", "log"),
        Binding("r", "results", "results", show=False),
        Binding("q", "app.quit", "quit", show=False),
    ]

    def __init__(
        self,
        session_id: str,
        job: JobView,
        instances: dict[str, InstanceView],
        stop: datetime | None,
    ) -> None:
        super().__init__(classes="detail-screen")
        self.session_id = session_id
        self.job = job
        self.instances = instances
        self.stop = stop
        self.log_lines: list[str] | None = None

    @property
    def awsac(self) -> AwsacHost:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        job = self.job
        yield TitleBar(
            Text.assemble(
                (f" job {job.jobnr}", "bold"),
                f" · {job.shellscript or '?'} · {self.session_id}",
            ),
            id="titlebar",
        )
        with VerticalScroll(id="detail-body"):
            yield Static("", id="detail")
            yield Static("", id="detail-log", markup=False)
        yield footer()

    def on_mount(self) -> None:
        backend = self.awsac.backend
        self.query_one("#detail", Static).update(
            detail_text(
                self.job,
                self.instances,
                self.stop,
                backend.now(),
                backend.results_location(self.session_id, self.job.jobnr),
            )
        )
        self.query_one("#detail-log").border_title = f"last {LAST_LINES} log lines"
        self.query_one("#detail-log", Static).update("reading the log …")
        self.load_log()

    @work(group="detail-log", exclusive=True, exit_on_error=False)
    async def load_log(self) -> None:
        box = self.query_one("#detail-log", Static)
        if self.job.runstarttime is None and self.job.status == "pending":
            self.log_lines = []
            box.update(NOT_STARTED)
            return
        try:
            text = await self.awsac.backend.job_log(self.session_id, self.job.jobnr)
        except Exception as exc:  # noqa: BLE001 - shown in place of the log
            box.update(f"the log could not be read: {exc}")
            return
        self.log_lines = text.splitlines()[-LAST_LINES:]
        box.update("\n".join(self.log_lines) if self.log_lines else "(no output yet)")

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_results(self) -> None:
        self.awsac.get_results(self.session_id)

    def action_log(self) -> None:
        from awsac_tui.ui.screens.log import LogScreen

        self.app.push_screen(LogScreen.for_job(self.session_id, self.job))
