"""The home screen: every session record with its jobs by status, instances alive and cost."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Input, Label, Static

from awsac_tui.ui.backend import SessionSummary
from awsac_tui.ui.screens.base import PollingScreen, TitleBar, footer, show_prompt
from awsac_tui.ui.screens.modals import ConfirmModal
from awsac_tui.ui.widgets.keyed_table import KeyedTable
from awsac_tui.ui.widgets.status import counts_text, status_bar

COLUMNS = [  # fixed widths where cells change in place (update_width=False)
    ("session", "session", 27),
    ("type", "type", 10),
    ("inst", "inst", 7),
    ("age", "age", 4),
    ("cost", "est $", 6),
    ("jobs", "jobs", 30),  # at least; takes the room the others leave
    ("cloud", "cloud", None),
]
# hidden in this order on narrow terminals: the session screen shows the cloud and the type, and
# the session id starts with its creation time (yymmdd_hhmm)
DROP = ("cloud", "type", "age")


def format_age(created: datetime, now: datetime) -> str:
    """A short age: 45s, 12m, 3h05, 2d."""
    seconds = max(0, int((now - created).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}"
    return f"{seconds // 86400}d"


def summary_cells(s: SessionSummary, now: datetime) -> tuple:
    jobs = status_bar(s.job_counts, 6)
    jobs.append(" ")
    jobs.append_text(counts_text(s.job_counts))
    inst = Text(f"{s.instances_alive}/{s.n_instances}", style="green" if s.instances_alive else "")
    if s.cleaned:  # nothing is left in the cloud; the jobs keep their last known states
        inst = Text("cleaned", style="grey50 italic")
    cost = "" if s.est_cost is None else f"~{s.est_cost:.2f}"
    sid = Text(s.session_id, style="grey50" if s.cleaned else "")
    return (sid, s.instance_type, inst, format_age(s.created, now), cost, jobs, s.cloud)


EMPTY_HINT = (
    "No sessions yet.\n\n"
    "Press n to compose one: give a directory with your job scripts (for example "
    "examples/eventgen), add job lines, pick an instance type and an image, then ctrl+g "
    "starts it.\n\n"
    "Sessions started with `awsac start` show up here too."
)


class SessionsScreen(PollingScreen):
    """Home: the session records, newest first."""

    BINDINGS = [
        Binding("n", "new", "new"),
        Binding("enter", "open", "open", priority=False),
        Binding("r", "results", "results"),
        Binding("x", "cleanup", "cleanup"),
        Binding("slash", "filter", "filter", key_display="/"),
        Binding("h", "hide_cleaned", "hide cleaned", show=False),
        Binding("escape", "clear_filter", "clear filter", show=False),
        Binding("q", "app.quit", "quit"),
    ]

    def __init__(self) -> None:
        super().__init__(id="sessions")
        self.summaries: list[SessionSummary] = []
        self.filter_text = ""
        self.hide_cleaned = False
        self.cloud_problem: str | None = None

    def compose(self) -> ComposeResult:
        yield TitleBar("", id="titlebar")
        with Horizontal(id="filter-bar", classes="prompt-bar", disabled=True):
            yield Label("filter /", classes="prompt")
            yield Input(
                placeholder="words of the id, type or cloud; esc clears", id="filter", compact=True
            )
        yield KeyedTable(COLUMNS, drop=DROP, flex="jobs", id="sessions-table")
        yield Static(EMPTY_HINT, id="empty-hint", markup=False)
        yield footer()

    def on_mount(self) -> None:
        self.query_one(KeyedTable).focus()
        self.query_one("#empty-hint").display = False
        self.update_title()
        self.probe()
        super().on_mount()

    @work(group="probe", exclusive=True, exit_on_error=False)
    async def probe(self) -> None:
        """Find the cloud (a health call: in a worker); offer the local cloud when none answers."""
        problem = await self.awsac.backend.probe_cloud()
        self.cloud_problem = problem
        self.update_title()
        if problem is None or self.awsac.read_only:
            return
        start = await self.app.push_screen_wait(
            ConfirmModal(
                "no cloud",
                f"No cloud answers: {problem}\n\n"
                "Start the local cloud now? It runs on this machine and needs no account.",
                yes="Start local cloud",
            )
        )
        if not start:
            self.notify("no cloud: sessions cannot be composed or started", severity="warning")
            return
        self.notify("starting the local cloud …")
        try:
            where = await self.awsac.backend.start_local_cloud()
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.awsac.report_error("starting the local cloud", exc)
            return
        self.cloud_problem = None
        self.update_title()
        self.notify(f"the local cloud runs: {where}")
        make = await self.app.push_screen_wait(
            ConfirmModal(
                "a snapshot for your jobs",
                "Jobs find their software on a volume made from a snapshot. "
                "Make a snapshot from a directory now? (Later: `awsac local snapshot DIR`, or "
                "'from a dir…' in a job line.)",
                yes="Make a snapshot",
            )
        )
        if make:
            from awsac_tui.ui.screens.compose import DirectoryModal

            answer = await self.app.push_screen_wait(
                DirectoryModal("new snapshot", "Make a snapshot of a directory on the local cloud.")
            )
            if answer is not None:
                directory, description = answer
                try:
                    snap_id = await self.awsac.backend.make_snapshot(directory, description)
                except Exception as exc:  # noqa: BLE001 - shown to the user
                    self.awsac.report_error("snapshot", exc)
                    return
                self.notify(f"made {snap_id} of {directory}: pick it in a job line", timeout=10)
        self.action_force_refresh()

    def update_title(self) -> None:
        t = Text(" awsac ─ sessions", style="bold")
        if self.cloud_problem:
            t.append("   no cloud answers", style="bold red")
        else:
            t.append(f"   cloud: {self.awsac.backend.cloud_description()}")
        t.append(f"   ↻ {self.interval:g}s", style="grey50")
        if self.hide_cleaned:
            t.append("   cleaned hidden (h)", style="grey50")
        self.query_one(TitleBar).update(t)

    async def fetch(self) -> list[SessionSummary]:
        return await self.awsac.backend.list_sessions()

    def next_interval(self) -> float:
        return self.awsac.scale_interval(5.0)

    def apply(self, data: object) -> None:
        self.summaries = list(data)  # type: ignore[call-overload]
        self.render_rows()

    def render_rows(self) -> None:
        table = self.query_one(KeyedTable)
        now = self.awsac.backend.now()
        needle = self.filter_text.lower()
        rows = {
            s.session_id: summary_cells(s, now)
            for s in self.summaries
            if (not needle or needle in f"{s.session_id} {s.instance_type} {s.cloud}".lower())
            and not (self.hide_cleaned and s.cleaned)
        }
        with self.app.batch_update():
            added, _, _ = table.sync(rows)
            if added:
                table.sort("session", reverse=True, key=lambda cell: str(cell))
            empty = not self.summaries
            self.query_one("#empty-hint").display = empty
            if table.display == empty:  # shown or hidden now
                table.display = not empty
                if not empty and not isinstance(self.focused, Input):
                    table.focus()
        self.update_title()

    def action_hide_cleaned(self) -> None:
        self.hide_cleaned = not self.hide_cleaned
        self.render_rows()
        n = sum(1 for s in self.summaries if s.cleaned)
        self.notify(
            f"{n} cleaned session(s) hidden (h shows them)"
            if self.hide_cleaned
            else "cleaned sessions shown (h hides them)"
        )

    @property
    def selected(self) -> str | None:
        return self.query_one(KeyedTable).cursor_key

    def action_new(self) -> None:
        from awsac_tui.ui.screens.compose import ComposeScreen

        self.app.push_screen(ComposeScreen())

    def action_open(self) -> None:
        if self.selected:
            self.awsac.open_session(self.selected)

    @on(KeyedTable.RowSelected, "#sessions-table")
    def row_selected(self, event: KeyedTable.RowSelected) -> None:
        self.awsac.open_session(event.row_key.value)

    def action_results(self) -> None:
        if self.selected:
            self.awsac.get_results(self.selected)

    def action_cleanup(self) -> None:
        if self.selected:
            self.awsac.cleanup_session(self.selected, after=self.action_force_refresh)

    def action_filter(self) -> None:
        show_prompt(self.query_one("#filter-bar"), True)
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        show_prompt(self.query_one("#filter-bar"), False)
        self.query_one(KeyedTable).focus()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self.render_rows()

    @on(Input.Submitted, "#filter")
    def filter_done(self) -> None:
        self.query_one(KeyedTable).focus()
