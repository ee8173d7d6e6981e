"""Compose a session: job directory, jobs.cfg lines, instance type, image, bucket, key pair.

Shows live the instance count, unused cores and which launch index runs which job numbers,
with inline validation; ctrl+s writes jobs.cfg + session.toml, ctrl+r starts the session.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from awsac_agent import assignment
from awsac_agent.errors import AwsacError
from awsac_agent.jobscfg import (
    NO_SNAPSHOT,
    SNAPSHOT_RE,
    JobLine,
    check_script_path,
    check_scripts_exist,
    read_jobs_cfg,
    write_jobs_cfg,
)
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, Select, Static

from awsac_tui import spec as specmod
from awsac_tui.session import ComposeChoices, StartPlan
from awsac_tui.spec import SessionSpec
from awsac_tui.ui.host import AwsacHost
from awsac_tui.ui.screens.base import TitleBar
from awsac_tui.ui.screens.modals import ConfirmModal, MessageModal, ProgressModal
from awsac_tui.ui.widgets.keyed_table import KeyedTable

LINE_COLUMNS = [  # the snapshot (id + description) last: it takes the room left, cut if need be
    ("n", "#", 3),
    ("script", "script", 13),
    ("count", "count", 5),
    ("jobs", "jobs", 7),
    ("snapshot", "snapshot", 13),
]
SKIP_FILES = {"jobs.cfg", "session.toml", "session.ini"}
MAX_PLAN_LINES = 8


def list_scripts(job_dir: Path, limit: int = 500) -> list[str]:
    """Files in the job directory (relative posix paths), scripts first; hidden files skipped."""
    if not job_dir.is_dir():
        return []
    found: list[str] = []
    for p in sorted(job_dir.rglob("*")):
        rel = p.relative_to(job_dir)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        if rel.as_posix() in SKIP_FILES:
            continue
        found.append(rel.as_posix())
        if len(found) >= limit:
            break
    found.sort(key=lambda s: (not s.endswith(".sh"), s.count("/"), s))
    return found


def describe_plan(n_jobs: int, cpi: int, price: float | None) -> Text:
    """``4 jobs → 2 instances × 2 cores, 0 unused`` and the LI -> job numbers lines."""
    t = Text()
    if n_jobs <= 0 or cpi <= 0:
        t.append("no jobs yet", style="grey50")
        return t
    n_inst = assignment.n_instances(n_jobs, cpi)
    unused = assignment.unused_cores(n_jobs, cpi)
    t.append(f"{n_jobs} jobs → {n_inst} instance{'s' if n_inst != 1 else ''}", style="bold")
    t.append(f"\n× {cpi} cores, ")
    t.append(f"{unused} unused", style="yellow" if unused else "green")
    for li, jobs in enumerate(assignment.plan(n_jobs, cpi)):
        if li >= MAX_PLAN_LINES:
            t.append(f"\n… LI {MAX_PLAN_LINES}..{n_inst - 1}", style="grey50")
            break
        nums = " ".join(str(j) for j in jobs) if len(jobs) <= 6 else f"{jobs[0]}-{jobs[-1]}"
        t.append(f"\nLI {li}: jobs {nums}")
    if price is not None:
        t.append(f"\n~${n_inst * price:.2f}/h while running", style="grey50")
    return t


class JobLineModal(ModalScreen[JobLine | None]):
    """Edit one jobs.cfg line: snapshot (picked or typed), script (picked or typed), count."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, line: JobLine | None, choices: ComposeChoices, scripts: list[str]) -> None:
        super().__init__(classes="dialog")
        self.line = line
        self.choices = choices
        self.scripts = scripts

    def compose(self) -> ComposeResult:
        line = self.line
        snap_options = [
            (
                f"{s.snapshot_id}  {s.description}" + (f"  {s.size_gib} GiB" if s.size_gib else ""),
                s.snapshot_id,
            )
            for s in self.choices.snapshots
        ]
        snap_options.append(("-  (no software volume)", NO_SNAPSHOT))
        known = {v for _, v in snap_options}
        current_snap = (line.snapshot or NO_SNAPSHOT) if line else Select.NULL
        typed_snap = ""
        if line and current_snap not in known:
            typed_snap, current_snap = str(line.snapshot), Select.NULL
        script_options = [(s, s) for s in self.scripts]
        current_script = line.script if line and line.script in self.scripts else Select.NULL
        typed_script = line.script if line and line.script not in self.scripts else ""
        with Vertical(id="dialog"):
            yield Label("job line" if line else "new job line", id="dialog-title")
            with Grid(id="line-form"):
                yield Label("snapshot")
                yield Select(
                    snap_options, value=current_snap, id="snap-select", compact=True, prompt="pick"
                )
                yield Label("or type")
                yield Input(typed_snap, placeholder="snap-0123abcd", id="snap-input", compact=True)
                yield Label("script")
                yield Select(
                    script_options,
                    value=current_script,
                    id="script-select",
                    compact=True,
                    prompt="pick",
                )
                yield Label("or type")
                yield Input(typed_script, placeholder="myjob.sh", id="script-input", compact=True)
                yield Label("count")
                yield Input(
                    str(line.count) if line else "1", id="count-input", type="integer", compact=True
                )
            yield Static("", id="line-problems", markup=False)
            with Horizontal(id="buttons"):
                yield Button("OK", id="ok", variant="primary")
                yield Button("Cancel", id="cancel")

    def current(self) -> tuple[JobLine | None, list[str]]:
        typed = self.query_one("#snap-input", Input).value.strip()
        picked = self.query_one("#snap-select", Select).value
        problems: list[str] = []
        snap: str | None
        if typed:
            snap = None if typed == NO_SNAPSHOT else typed
        elif picked is Select.NULL:
            snap = None
            problems.append("pick a snapshot, or type one (- for none)")
        else:
            snap = None if picked == NO_SNAPSHOT else str(picked)
        if snap is not None and not SNAPSHOT_RE.match(snap):
            problems.append(f"{snap!r} is not a snapshot id (snap-<hex>, or - for none)")
        script = self.query_one("#script-input", Input).value.strip()
        if not script:
            value = self.query_one("#script-select", Select).value
            script = "" if value is Select.NULL else str(value)
        why = check_script_path(script)
        if why:
            problems.append(why)
        count_s = self.query_one("#count-input", Input).value.strip()
        count = int(count_s) if count_s.isdigit() else 0
        if count < 1:
            problems.append(f"count {count_s!r} must be a positive integer")
        if problems:
            return None, problems
        return JobLine(snap, script, count, self.line.lineno if self.line else 0), []

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
            return
        line, problems = self.current()
        if line is None:
            self.query_one("#line-problems", Static).update("\n".join(problems))
            return
        self.dismiss(line)

    @on(Input.Submitted)
    def submitted(self) -> None:
        self.query_one("#ok", Button).press()

    def action_cancel(self) -> None:
        self.dismiss(None)


class ComposeScreen(Screen):
    """Write or start a new session; loads an existing jobs.cfg + session.toml/ini."""

    BINDINGS = [
        Binding("escape", "back", "back"),
        Binding("a", "add_line", "add line"),
        Binding("e", "edit_line", "edit", show=False),
        Binding("d", "delete_line", "delete line"),
        Binding("ctrl+o", "open_dir", "open dir"),
        Binding("ctrl+s", "save", "save"),
        Binding("ctrl+r", "start", "start"),
    ]

    def __init__(self, job_dir: Path | None = None) -> None:
        super().__init__(id="compose")
        self.job_dir: Path | None = job_dir
        self.lines: list[JobLine] = []
        self.scripts: list[str] = []
        self.choices = ComposeChoices()
        self.problems: list[str] = []
        self.loaded_spec: SessionSpec | None = None

    @property
    def awsac(self) -> AwsacHost:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield TitleBar(" awsac ─ new session", id="titlebar")
        with VerticalScroll(id="compose-body"):
            with Grid(id="form"):
                yield Label("job dir")
                yield Input(
                    str(self.job_dir or ""),
                    placeholder="~/jobs/eventgen",
                    id="job-dir",
                    compact=True,
                )
                yield Label("short descr")
                yield Input("", placeholder="eventgen", id="shortdescr", max_length=8, compact=True)
                yield Label("instance type")
                yield Select([], id="instance-type", compact=True, prompt="type")
                yield Label("image")
                yield Select([], id="image", compact=True, prompt="image")
                yield Label("bucket")
                yield Input("", placeholder="atlassessions", id="bucket", compact=True)
                yield Label("key pair")
                yield Select([], id="key-pair", compact=True, prompt="(none)")
                yield Label("status store")
                yield Select(
                    [("SimpleDB", "simpledb"), ("S3 only", "s3")],
                    value="simpledb",
                    allow_blank=False,
                    id="status-store",
                    compact=True,
                )
                yield Label("jobs/instance")
                yield Input(
                    "",
                    placeholder="all vCPUs",
                    id="jobs-per-instance",
                    type="integer",
                    compact=True,
                )
            with Horizontal(id="lines-row"):
                yield KeyedTable(LINE_COLUMNS, flex="snapshot", id="lines")
                yield Static("", id="plan")
            yield Static("", id="scripts", markup=False)
            yield Static("", id="problems")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#lines").border_title = "jobs.cfg"
        self.load_choices()
        if self.job_dir:
            self.open_dir(self.job_dir)
            self.query_one("#lines").focus()
        else:  # the first thing to give: typing goes there, not to the a/d line keys
            self.query_one("#job-dir").focus()
        self.revalidate()

    @work(group="compose-choices", exit_on_error=False)
    async def load_choices(self) -> None:
        try:
            choices = await self.awsac.backend.compose_choices()
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.awsac.report_error("listing the account's snapshots, images and types", exc)
            return
        self.set_choices(choices)

    def set_choices(self, choices: ComposeChoices) -> None:
        self.choices = choices
        spec = self.loaded_spec
        types = [(f"{t.name}  {t.vcpus} vCPU", t.name) for t in choices.instance_types]
        if spec and spec.instance_type not in {t.name for t in choices.instance_types}:
            types.append((f"{spec.instance_type}  (?)", spec.instance_type))
        self._set_options("#instance-type", types, spec.instance_type if spec else None)
        images = [(f"{i.image_id}  {i.name}", i.image_id) for i in choices.images]
        if spec and spec.image_id not in {i.image_id for i in choices.images}:
            images.append((spec.image_id, spec.image_id))
        self._set_options("#image", images, spec.image_id if spec else None)
        keys = [(k, k) for k in choices.key_pairs]
        self._set_options("#key-pair", keys, spec.key_name if spec else None)
        bucket = self.query_one("#bucket", Input)
        if not bucket.value and choices.buckets:
            bucket.value = choices.buckets[0]
        if self.lines:  # the snapshots' descriptions arrived
            self.show_lines()
        self.revalidate()

    def _set_options(
        self, selector: str, options: list[tuple[str, str]], value: str | None
    ) -> None:
        select = self.query_one(selector, Select)
        current = select.value
        select.set_options(options)
        values = {v for _, v in options}
        if value in values:
            select.value = value
        elif current in values:
            select.value = current
        elif options and selector in ("#instance-type", "#image"):
            select.value = options[0][1]

    # ---- job directory ------------------------------------------------------------------

    @on(Input.Submitted, "#job-dir")
    def job_dir_submitted(self, event: Input.Submitted) -> None:
        self.open_dir(Path(event.value).expanduser())

    def action_open_dir(self) -> None:
        value = self.query_one("#job-dir", Input).value.strip()
        if value:
            self.open_dir(Path(value).expanduser())
        else:
            self.query_one("#job-dir", Input).focus()

    def open_dir(self, job_dir: Path) -> None:
        """Use ``job_dir``: list its scripts, load its jobs.cfg and session.toml/ini if present."""
        self.job_dir = job_dir
        box = self.query_one("#job-dir", Input)
        if box.value != str(job_dir):
            box.value = str(job_dir)
        self.scripts = list_scripts(job_dir)
        loaded: list[str] = []
        for name in ("session.toml", "session.ini"):
            path = job_dir / name
            if path.is_file():
                try:
                    spec = specmod.load_spec(path)
                except AwsacError as exc:
                    self.awsac.report_error(f"reading {path}", exc)
                    break
                self.load_spec_values(spec)
                loaded.append(name)
                break
        cfg = job_dir / "jobs.cfg"
        if cfg.is_file():
            try:
                self.lines = read_jobs_cfg(cfg)
                loaded.append("jobs.cfg")
            except AwsacError as exc:
                self.awsac.report_error(f"reading {cfg}", exc)
        if loaded:
            self.notify(f"loaded {' + '.join(loaded)} from {job_dir}")
        self.show_lines()
        self.revalidate()

    def load_spec_values(self, spec: SessionSpec) -> None:
        self.loaded_spec = spec
        self.query_one("#shortdescr", Input).value = spec.shortdescr
        self.query_one("#bucket", Input).value = spec.bucket
        self.query_one("#status-store", Select).value = spec.status_store
        self.query_one("#jobs-per-instance", Input).value = (
            str(spec.jobs_per_instance) if spec.jobs_per_instance else ""
        )
        self.set_choices(self.choices)

    # ---- lines --------------------------------------------------------------------------

    def show_lines(self) -> None:
        table = self.query_one("#lines", KeyedTable)
        descr = {s.snapshot_id: s.description for s in self.choices.snapshots}
        rows = {}
        first = 1
        for k, line in enumerate(self.lines):
            snap = line.snapshot or NO_SNAPSHOT
            label = f"{snap} {descr[snap]}" if snap in descr else snap
            last = first + line.count - 1
            rows[f"line{k}"] = (
                str(k + 1),
                line.script,
                str(line.count),
                f"{first}-{last}" if last > first else str(first),
                label,
            )
            first = last + 1
        with self.app.batch_update():
            table.sync(rows)

    def edit(self, index: int | None) -> None:
        line = self.lines[index] if index is not None else None

        def done(result: JobLine | None) -> None:
            if result is None:
                return
            if index is None:
                self.lines.append(result)
            else:
                self.lines[index] = result
            self.show_lines()
            self.revalidate()

        self.app.push_screen(JobLineModal(line, self.choices, self.scripts), done)

    def _cursor_index(self) -> int | None:
        key = self.query_one("#lines", KeyedTable).cursor_key
        return int(key.removeprefix("line")) if key else None

    def action_add_line(self) -> None:
        self.edit(None)

    def action_edit_line(self) -> None:
        index = self._cursor_index()
        if index is not None:
            self.edit(index)

    @on(KeyedTable.RowSelected, "#lines")
    def line_selected(self, event: KeyedTable.RowSelected) -> None:
        self.edit(int(event.row_key.value.removeprefix("line")))

    def action_delete_line(self) -> None:
        index = self._cursor_index()
        if index is not None and index < len(self.lines):
            del self.lines[index]
            self.show_lines()
            self.revalidate()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # single-letter keys type into inputs; only act on them when an input is not focused
        if action in ("add_line", "edit_line", "delete_line") and isinstance(self.focused, Input):
            return False
        if action == "start" and getattr(self.app, "read_only", False):
            return None  # read-only: shown disabled
        return True

    # ---- the spec, validation and the plan ---------------------------------------------

    def _value(self, selector: str) -> str:
        widget = self.query_one(selector)
        if isinstance(widget, Select):
            return "" if widget.value is Select.NULL else str(widget.value)
        return widget.value.strip()  # type: ignore[attr-defined]

    def build_spec(self) -> SessionSpec:
        jpi = self._value("#jobs-per-instance")
        base = self.loaded_spec or SessionSpec("", "", "", "")
        return replace(
            base,
            instance_type=self._value("#instance-type"),
            image_id=self._value("#image"),
            bucket=self._value("#bucket"),
            shortdescr=self._value("#shortdescr"),
            key_name=self._value("#key-pair") or None,
            status_store=self._value("#status-store") or "simpledb",  # type: ignore[arg-type]
            jobs_per_instance=int(jpi) if jpi.isdigit() and int(jpi) > 0 else None,
            n_jobs=None,
            jobs_cfg="jobs.cfg",
            job_dir=None,
        )

    def cores_per_instance(self, spec: SessionSpec) -> int:
        vcpus = next(
            (t.vcpus for t in self.choices.instance_types if t.name == spec.instance_type), 1
        )
        return min(vcpus, spec.jobs_per_instance) if spec.jobs_per_instance else vcpus

    def validate(self, spec: SessionSpec) -> list[str]:
        problems: list[str] = []
        if self.job_dir is None:
            problems.append("job dir: give the directory with your job scripts (enter loads it)")
        elif not self.job_dir.is_dir():
            problems.append(f"job dir: {self.job_dir} is not a directory")
        if not self.lines:
            problems.append("jobs.cfg: no job lines (press a to add one)")
        elif self.job_dir is not None and self.job_dir.is_dir():
            problems += check_scripts_exist(self.lines, self.scripts, "jobs.cfg")
        problems += specmod.validate_spec(spec, self.lines or None)
        return problems

    @on(Input.Changed)
    @on(Select.Changed)
    def form_changed(self) -> None:
        self.revalidate()

    def revalidate(self) -> None:
        if not self.is_mounted:
            return
        spec = self.build_spec()
        self.problems = self.validate(spec)
        n = sum(line.count for line in self.lines)
        price = next(
            (t.hourly_price for t in self.choices.instance_types if t.name == spec.instance_type),
            None,
        )
        self.query_one("#plan", Static).update(
            describe_plan(n, self.cores_per_instance(spec), price)
        )
        t = Text()
        if self.problems:
            for k, p in enumerate(self.problems):
                t.append(("\n" if k else "") + "✗ " + p, style="red")
        else:
            t.append("✓ valid: ctrl+s saves, ctrl+r starts", style="green")
        for note in self.choices.notes:
            t.append("\n! " + note, style="yellow")
        self.query_one("#problems", Static).update(t)
        where = str(self.job_dir) if self.job_dir else "no job dir"
        shown = ", ".join(self.scripts[:6]) + (" …" if len(self.scripts) > 6 else "")
        self.query_one("#scripts", Static).update(
            f"{len(self.scripts)} files: {shown}" if self.scripts else ""
        )
        self.query_one(TitleBar).update(
            Text.assemble(
                (" awsac ─ new session", "bold"), f"   {where} ({len(self.scripts)} files)"
            )
        )

    # ---- save and start -----------------------------------------------------------------

    def _ready(self, verb: str) -> SessionSpec | None:
        spec = self.build_spec()
        self.problems = self.validate(spec)
        self.revalidate()
        if self.problems:
            self.notify(
                f"cannot {verb}: {len(self.problems)} problem(s) shown below", severity="error"
            )
            return None
        return spec

    def action_save(self) -> bool:
        spec = self._ready("save")
        if spec is None or self.job_dir is None:
            return False
        try:
            write_jobs_cfg(
                self.job_dir / "jobs.cfg",
                self.lines,
                header="written by awsac: snapshotID;script;count",
            )
            specmod.write_spec(self.job_dir / "session.toml", spec, header="written by awsac")
        except OSError as exc:
            self.awsac.report_error("save", exc)
            return False
        self.notify(f"wrote jobs.cfg and session.toml in {self.job_dir}")
        return True

    def action_start(self) -> None:
        spec = self._ready("start")
        if spec is None or self.job_dir is None:
            return
        # jobs.cfg travels in the session archive: write it (and session.toml) first
        if not self.action_save():
            return
        self.start_session(spec, list(self.lines), self.job_dir)

    async def confirm_start(self, plan: StartPlan) -> bool:
        """The paper's question, asked in a modal before any instance is run."""
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        question = (
            f"Run exactly {plan.n_instances} instance{'s' if plan.n_instances != 1 else ''} "
            f"of type {plan.spec.instance_type} (image {plan.spec.image_id}) with this user-data?\n\n"
            f"  {plan.userdata}\n\n"
            f"session {plan.session_id}: {plan.n_jobs} jobs, {plan.cores_per_instance} per instance"
        )
        self.app.push_screen(
            ConfirmModal("start session", question, yes="Run"),
            lambda yes: answer.done() or answer.set_result(bool(yes)),
        )
        return await answer

    @work(group="verbs", exclusive=True, exit_on_error=False)
    async def start_session(self, spec: SessionSpec, lines: list[JobLine], job_dir: Path) -> None:
        modal = [ProgressModal(f"starting {spec.shortdescr}")]
        await self.app.push_screen(modal[0])

        def progress(message: str, fraction: float | None) -> None:
            modal[0].report(message, fraction)

        def close_progress() -> None:
            if self.app.screen is modal[0]:
                self.app.pop_screen()

        async def confirm(plan: StartPlan) -> bool:
            close_progress()
            ok = await self.confirm_start(plan)
            if ok:
                modal[0] = ProgressModal(f"starting {plan.session_id}")
                await self.app.push_screen(modal[0])
            return ok

        try:
            session_id = await self.awsac.backend.start(spec, lines, job_dir, progress, confirm)
        except Exception as exc:  # noqa: BLE001 - shown to the user, who must read it
            close_progress()
            message = str(exc) if isinstance(exc, AwsacError) else f"{type(exc).__name__}: {exc}"
            self.app.push_screen(MessageModal("start failed", message))
            return
        close_progress()
        if session_id is None:
            self.notify("not started: you declined to run the instances")
            return
        self.app.pop_screen()  # compose
        self.awsac.open_session(session_id)

    def action_back(self) -> None:
        self.app.pop_screen()
