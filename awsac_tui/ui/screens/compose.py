"""Compose a session: job directory, jobs.cfg lines, instance type, image, bucket, key pair.

Shows live the instance count, unused cores and which launch index runs which job numbers,
with inline validation; the form says valid only once the cloud has confirmed that the image
and every snapshot exist. ctrl+s writes jobs.cfg + session.toml (keeping the user's comments),
ctrl+g starts the session.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, replace
from pathlib import Path

from awsac_agent import assignment
from awsac_agent.errors import AwsacError
from awsac_agent.fsutil import atomic_write
from awsac_agent.jobscfg import (
    NO_SNAPSHOT,
    SNAPSHOT_RE,
    JobLine,
    check_script_path,
    check_scripts_exist,
    format_jobs_cfg_keeping,
    parse_jobs_cfg,
)
from awsac_agent.status import DEFAULT_STORE, STORE_KINDS
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, Select, Static

from awsac_tui import spec as specmod
from awsac_tui.session import ComposeChoices, StartPlan
from awsac_tui.spec import SessionSpec
from awsac_tui.ui.host import AwsacHost
from awsac_tui.ui.screens.base import TitleBar, footer
from awsac_tui.ui.screens.modals import ConfirmModal, MessageModal, ProgressModal
from awsac_tui.ui.widgets.keyed_table import KeyedTable

LINE_COLUMNS = [  # the snapshot (id + description) last: it takes the room left, cut if need be
    ("n", "line", 4),
    ("script", "script", 13),
    ("count", "count", 5),
    ("jobs", "jobs", 7),
    ("snapshot", "snapshot", 13),
]
SKIP_FILES = {"jobs.cfg", "session.toml", "session.ini"}
MAX_PLAN_LINES = 8
JOBS_CFG_HEADER = "written by awsac: snapshotID;script;count"
SPEC_HEADER = "written by awsac (format: docs/session-spec.md)"
REFS_DEBOUNCE = 0.3  # seconds of quiet before the cloud is asked about the image and snapshots


def list_scripts(job_dir: Path, limit: int = 500) -> list[str]:
    """Files in the job directory (relative posix paths), scripts first; hidden files skipped.

    Walks the directory: call it in a thread, never on the event loop.
    """
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


def format_hours(minutes: float) -> str:
    """``45 min``, ``5 h``, ``2.5 h``, ``3 d``."""
    if minutes < 90:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    if hours < 48:
        return f"{hours:.0f} h" if hours >= 10 or hours == int(hours) else f"{hours:.1f} h"
    return f"{hours / 24:.0f} d"


@dataclass(frozen=True)
class PlanInput:
    """What the plan panel is computed from."""

    n_jobs: int
    cpi: int
    instance_type: str = ""
    price: float | None = None
    queue: bool = False
    max_instances: int | None = None
    job_minutes: float | None = None
    vcpu_quota: int | None = None
    vcpus: int | None = None  # of the instance type (the quota counts vCPUs, not job slots)
    instance_quota: int | None = None  # where the account states instances, not vCPUs


def describe_plan(plan: PlanInput | int, cpi: int = 0, price: float | None = None) -> Text:
    """``4 jobs → 2 instances × 2 cores, 0 unused`` and the LI -> job numbers lines (static);
    ``10,000 jobs on 32 × c5.large (64 cores), about 5 h at 1 min a job`` (queue); the quota."""
    if not isinstance(plan, PlanInput):
        plan = PlanInput(plan, cpi, price=price)
    n_jobs, cpi = plan.n_jobs, plan.cpi
    t = Text()
    if n_jobs <= 0 or cpi <= 0:
        t.append("no jobs yet", style="grey50")
        return t
    if plan.queue:
        n_inst = assignment.n_instances(n_jobs, cpi)
        if plan.max_instances:
            n_inst = min(n_inst, plan.max_instances)
        cores = n_inst * cpi
        kind = f" × {plan.instance_type}" if plan.instance_type else " instances"
        t.append(f"{n_jobs:,} jobs on {n_inst}{kind}", style="bold")
        t.append(f"\n({cores} cores, a queue)")
        if plan.job_minutes:
            rounds = -(-n_jobs // cores)
            t.append(
                f"\nabout {format_hours(rounds * plan.job_minutes)} at "
                f"{plan.job_minutes:g} min a job"
            )
    else:
        n_inst = assignment.n_instances(n_jobs, cpi)
        unused = assignment.unused_cores(n_jobs, cpi)
        t.append(f"{n_jobs:,} jobs → {n_inst} instance{'s' if n_inst != 1 else ''}", style="bold")
        t.append(f"\n× {cpi} cores, ")
        t.append(f"{unused} unused", style="yellow" if unused else "green")
        if plan.job_minutes:
            t.append(f"\nabout {format_hours(plan.job_minutes)} at {plan.job_minutes:g} min a job")
        for li, jobs in enumerate(assignment.plan(n_jobs, cpi)):
            if li >= MAX_PLAN_LINES:
                t.append(f"\n… LI {MAX_PLAN_LINES}..{n_inst - 1}", style="grey50")
                break
            nums = " ".join(str(j) for j in jobs) if len(jobs) <= 6 else f"{jobs[0]}-{jobs[-1]}"
            t.append(f"\nLI {li}: jobs {nums}")
    if plan.vcpu_quota is not None:
        need = n_inst * (plan.vcpus or cpi)
        if need > plan.vcpu_quota:
            t.append(f"\nneeds {need} vCPUs: quota {plan.vcpu_quota}", style="bold red")
        else:
            t.append(f"\n{need} of {plan.vcpu_quota} vCPUs quota", style="grey50")
    if plan.instance_quota is not None:
        if n_inst > plan.instance_quota:
            t.append(f"\nneeds {n_inst} instances: limit {plan.instance_quota}", style="bold red")
        else:
            t.append(f"\n{n_inst} of {plan.instance_quota} instances limit", style="grey50")
    if plan.price is not None:
        t.append(f"\n~${n_inst * plan.price:.2f}/h while running", style="grey50")
    return t


class DirectoryModal(ModalScreen[tuple[Path, str] | None]):
    """Ask for a directory (and a description) to make a snapshot of."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, title: str, explain: str, directory: str = "") -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.explain = explain
        self.directory = directory

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield Static(self.explain, id="question", markup=False)
            with Grid(id="line-form"):
                yield Label("directory")
                yield Input(
                    self.directory, placeholder="e.g. ~/atlas/release", id="dir-input", compact=True
                )
                yield Label("description")
                yield Input("", placeholder="e.g. ATLAS 14.2.10", id="descr-input", compact=True)
            yield Static("", id="line-problems", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Make snapshot", id="ok", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#dir-input").focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
            return
        self.check_and_dismiss()

    @work(group="dir-check", exclusive=True)
    async def check_and_dismiss(self) -> None:
        text = self.query_one("#dir-input", Input).value.strip()
        path = Path(text).expanduser()
        ok = bool(text) and await asyncio.to_thread(path.is_dir)
        if not ok:
            self.query_one("#line-problems", Static).update(
                f"{text or '(empty)'} is not a directory: give the directory whose content "
                "the jobs should find on their volume"
            )
            return
        self.dismiss((path, self.query_one("#descr-input", Input).value.strip()))

    @on(Input.Submitted)
    def submitted(self) -> None:
        self.query_one("#ok", Button).press()

    def action_cancel(self) -> None:
        self.dismiss(None)


class JobLineModal(ModalScreen[JobLine | None]):
    """Edit one jobs.cfg line. One snapshot field and one script field: typing goes there, and a
    pick from the lists below replaces what the field holds."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(
        self,
        line: JobLine | None,
        choices: ComposeChoices,
        scripts: list[str],
        *,
        can_make_snapshot: bool = False,
    ) -> None:
        super().__init__(classes="dialog")
        self.line = line
        self.choices = choices
        self.scripts = scripts
        self.can_make_snapshot = can_make_snapshot

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
        typed_snap = (line.snapshot or NO_SNAPSHOT) if line else ""
        with Vertical(id="dialog"):
            yield Label(
                f"jobs.cfg line {line.lineno}" if line and line.lineno else "new job line",
                id="dialog-title",
            )
            with Grid(id="line-form"):
                yield Label("snapshot")
                yield Input(
                    typed_snap,
                    placeholder="e.g. snap-0123abcd, or - for none",
                    id="snap-input",
                    compact=True,
                )
                yield Label("")
                with Horizontal(classes="pick-row"):
                    yield Select(
                        snap_options,
                        id="snap-select",
                        compact=True,
                        prompt="pick one of the cloud's snapshots",
                    )
                    if self.can_make_snapshot:
                        yield Button("from a dir…", id="make-snapshot", compact=True)
                yield Label("")
                yield Static("", id="snap-about", markup=False)
                yield Label("script")
                yield Input(
                    line.script if line else "",
                    placeholder="e.g. myjob.sh",
                    id="script-input",
                    compact=True,
                )
                yield Label("")
                yield Select(
                    [(s, s) for s in self.scripts],
                    id="script-select",
                    compact=True,
                    prompt="pick a file of the job dir",
                )
                yield Label("count")
                yield Input(
                    str(line.count) if line else "1", id="count-input", type="integer", compact=True
                )
            yield Static("", id="line-problems", markup=False)
            with Horizontal(id="buttons"):
                yield Button("OK", id="ok", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#snap-input").focus()
        self.describe_snapshot()

    @on(Select.Changed, "#snap-select")
    def snapshot_picked(self, event: Select.Changed) -> None:
        if event.value is not Select.NULL:  # the pick replaces what the field holds
            self.query_one("#snap-input", Input).value = str(event.value)

    @on(Select.Changed, "#script-select")
    def script_picked(self, event: Select.Changed) -> None:
        if event.value is not Select.NULL:
            self.query_one("#script-input", Input).value = str(event.value)

    @on(Input.Changed, "#snap-input")
    def describe_snapshot(self) -> None:
        snap = self.query_one("#snap-input", Input).value.strip()
        about = self.query_one("#snap-about", Static)
        known = {s.snapshot_id: s for s in self.choices.snapshots}
        if not snap:
            about.update("")
        elif snap == NO_SNAPSHOT:
            about.update("no software volume for these jobs")
        elif snap in known:
            s = known[snap]
            about.update(
                f"{s.description or 'no description'}"
                + (f", {s.size_gib} GiB" if s.size_gib else "")
            )
        else:
            about.update("not one of the cloud's snapshots (the form asks the cloud)")

    def current(self) -> tuple[JobLine | None, list[str]]:
        typed = self.query_one("#snap-input", Input).value.strip()
        problems: list[str] = []
        snap: str | None = None
        if not typed:
            problems.append("snapshot: pick one, or type one (- for none)")
        elif typed != NO_SNAPSHOT:
            snap = typed
            if not SNAPSHOT_RE.match(snap):
                problems.append(
                    f"snapshot: {snap!r} is not a snapshot id (snap-<hex>, or - for none)"
                )
        script = self.query_one("#script-input", Input).value.strip()
        why = check_script_path(script)
        if why:
            problems.append(f"script: {why}")
        count_s = self.query_one("#count-input", Input).value.strip()
        count = int(count_s) if count_s.isdigit() else 0
        if count < 1:
            problems.append(f"count: {count_s!r} must be a positive integer")
        if problems:
            return None, problems
        return JobLine(snap, script, count, self.line.lineno if self.line else 0), []

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
            return
        if event.button.id == "make-snapshot":
            self.ask_snapshot()
            return
        line, problems = self.current()
        if line is None:
            self.query_one("#line-problems", Static).update("\n".join(problems))
            return
        self.dismiss(line)

    @work(group="verbs", exit_on_error=False)
    async def ask_snapshot(self) -> None:
        answer = await self.app.push_screen_wait(
            DirectoryModal(
                "new snapshot",
                "Make a snapshot of a directory on the local cloud "
                "(the same as `awsac local snapshot DIR`).",
            )
        )
        if answer is None:
            return
        directory, description = answer
        self.notify(f"making a snapshot of {directory} …")
        try:
            snap_id = await self.app.backend.make_snapshot(directory, description)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.app.report_error("snapshot", exc)  # type: ignore[attr-defined]
            return
        from awsac_tui.session import SnapshotInfo

        self.choices = replace(
            self.choices,
            snapshots=(
                SnapshotInfo(snap_id, description or directory.name),
                *self.choices.snapshots,
            ),
        )
        self.query_one("#snap-input", Input).value = snap_id
        self.notify(f"made {snap_id} of {directory}")

    @on(Input.Submitted)
    def submitted(self) -> None:
        self.query_one("#ok", Button).press()

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class LoadedDir:
    """What reading a job directory found (read in a thread)."""

    job_dir: Path
    scripts: list[str]
    spec: SessionSpec | None = None
    spec_name: str | None = None
    spec_text: str | None = None
    cfg_text: str | None = None
    lines: list[JobLine] = dataclasses.field(default_factory=list)
    errors: list[tuple[str, AwsacError]] = dataclasses.field(default_factory=list)


def read_job_dir(job_dir: Path) -> LoadedDir:
    """Scripts, session.toml (or session.ini) and jobs.cfg of a job directory (blocking I/O)."""
    scripts = list_scripts(job_dir)
    found = LoadedDir(job_dir, scripts)
    for name in ("session.toml", "session.ini"):
        path = job_dir / name
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8")
                spec = specmod.load_spec(path)
            except (AwsacError, OSError, UnicodeDecodeError) as exc:
                err = exc if isinstance(exc, AwsacError) else AwsacError(f"{path}: {exc}")
                found.errors.append((f"reading {path}", err))
                break
            found = replace(
                found,
                spec=spec,
                spec_name=name,
                spec_text=text if name == "session.toml" else None,
            )
            break
    cfg = job_dir / "jobs.cfg"
    if cfg.is_file():
        try:
            text = cfg.read_text(encoding="utf-8-sig")
            found = replace(found, cfg_text=text, lines=parse_jobs_cfg(text, str(cfg)))
        except (AwsacError, OSError, UnicodeDecodeError) as exc:
            err = exc if isinstance(exc, AwsacError) else AwsacError(f"{cfg}: {exc}")
            found.errors.append((f"reading {cfg}", err))
    return found


def _read_if_exists(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return None


class ComposeScreen(Screen):
    """Write or start a new session; loads an existing jobs.cfg + session.toml/ini."""

    BINDINGS = [
        Binding("escape", "back", "back"),
        Binding("ctrl+s", "save", "save"),
        Binding("ctrl+g", "start", "start"),
        Binding("a", "add_line", "add line"),
        Binding("ctrl+l", "jump_lines", "job lines"),
        Binding("d", "delete_line", "delete line", show=False),
        Binding("e", "edit_line", "edit line", show=False),
        Binding("ctrl+o", "open_dir", "open dir", show=False),
        Binding("q", "quit", "quit", show=False),
    ]

    AUTO_FOCUS = "#job-dir"  # typing goes there first, not to the a/d line keys

    def __init__(self, job_dir: Path | None = None) -> None:
        super().__init__(id="compose")
        self.job_dir: Path | None = job_dir
        self.lines: list[JobLine] = []
        self.scripts: list[str] = []
        self.choices = ComposeChoices()
        self.problems: list[str] = []
        self.loaded_spec: SessionSpec | None = None
        self.spec_text: str | None = None
        """session.toml as it was read (None: there was none), for a round-trip save."""
        self.cfg_text: str | None = None
        """jobs.cfg as it was read (None: there was none), for a save that keeps comments."""
        self.ref_problems: list[str] = []
        self.refs_checked: tuple | None = None
        """The draft (image, snapshots) the cloud last confirmed or refuted."""
        self.refs_error: str | None = None
        self.saved: tuple | None = None
        """The draft as last loaded or saved: Esc asks first when it changed."""
        self.loading = False
        self.quota: object | None = None  # session.Quota, once read

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
                    placeholder="e.g. ~/jobs/eventgen (enter loads it)",
                    id="job-dir",
                    compact=True,
                )
                yield Label("short descr")
                yield Input(
                    "", placeholder="e.g. eventgen", id="shortdescr", max_length=8, compact=True
                )
                yield Label("instance type")
                yield Select([], id="instance-type", compact=True, prompt="(pick a type)")
                yield Label("image")
                yield Select([], id="image", compact=True, prompt="(pick an image)")
                yield Label("bucket")
                yield Input("", placeholder="e.g. atlassessions", id="bucket", compact=True)
                yield Label("key pair")
                yield Select([], id="key-pair", compact=True, prompt="(none)")
                yield Label("status store")
                yield Select(
                    [(label, kind) for kind, label in STORE_KINDS.items()],
                    value=DEFAULT_STORE,
                    allow_blank=False,
                    id="status-store",
                    compact=True,
                )
                yield Label("jobs/instance")
                yield Input(
                    "",
                    placeholder="(all vCPUs)",
                    id="jobs-per-instance",
                    type="integer",
                    compact=True,
                )
                yield Label("min per job")
                yield Input(
                    "",
                    placeholder="(estimate, optional)",
                    id="job-minutes",
                    type="number",
                    compact=True,
                )
            with Horizontal(id="lines-row"):
                yield KeyedTable(LINE_COLUMNS, flex="snapshot", id="lines")
                yield Static("", id="plan")
            yield Static("", id="scripts", markup=False)
            yield Static("", id="problems")
        yield footer()

    def on_mount(self) -> None:
        self.query_one("#compose-body").can_focus = False  # Tab goes from field to field
        self.query_one("#lines").border_title = "jobs.cfg (a add, enter edit, d delete)"
        self.load_choices()
        if self.job_dir:
            self.open_dir(self.job_dir)
            self.call_after_refresh(self.query_one("#lines").focus)
        self.saved = self.draft()
        self.revalidate()

    # ---- the draft and whether it changed -----------------------------------------------

    def draft(self) -> tuple:
        """What the user would lose: the job dir, the spec and the lines."""
        spec = self.build_spec()
        return (
            str(self.job_dir or ""),
            spec,
            self._value("#job-minutes"),
            tuple((jl.snapshot, jl.script, jl.count) for jl in self.lines),
        )

    @property
    def changed(self) -> bool:
        return self.saved is not None and self.draft() != self.saved

    def _rebaseline(self, was_clean: bool) -> None:
        if was_clean:
            self.saved = self.draft()

    # ---- the account's choices ----------------------------------------------------------

    @work(group="compose-choices", exit_on_error=False)
    async def load_choices(self) -> None:
        try:
            choices = await self.awsac.backend.compose_choices()
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.awsac.report_error("listing the account's snapshots, images and types", exc)
            return
        self.set_choices(choices)
        try:  # the account's quota, where the cloud states it
            self.quota = await self.awsac.backend.account_quota()
        except Exception:  # noqa: BLE001 - unknown is an answer too
            self.quota = None
        self.revalidate()

    def set_choices(self, choices: ComposeChoices) -> None:
        was_clean = not self.changed
        self.choices = choices
        spec = self.loaded_spec
        types = [(f"{t.name}  {t.vcpus} vCPU", t.name) for t in choices.instance_types]
        if spec and spec.instance_type not in {t.name for t in choices.instance_types}:
            types.append((f"{spec.instance_type}  (?)", spec.instance_type))
        self._set_options("#instance-type", types, spec.instance_type if spec else None)
        images = [(f"{i.image_id}  {i.name}", i.image_id) for i in choices.images]
        if spec and spec.image_id not in {i.image_id for i in choices.images}:
            images.append((f"{spec.image_id}  (from session.toml)", spec.image_id))
        self._set_options("#image", images, spec.image_id if spec else None)
        keys = [(k, k) for k in choices.key_pairs]
        self._set_options("#key-pair", keys, spec.key_name if spec else None)
        bucket = self.query_one("#bucket", Input)
        if not bucket.value and choices.buckets:
            bucket.value = choices.buckets[0]
        if self.lines:  # the snapshots' descriptions arrived
            self.show_lines()
        self._rebaseline(was_clean)
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
        if event.value.strip():
            self.open_dir(Path(event.value.strip()).expanduser())

    def action_open_dir(self) -> None:
        value = self.query_one("#job-dir", Input).value.strip()
        if value:
            self.open_dir(Path(value).expanduser())
        else:
            self.query_one("#job-dir", Input).focus()

    def open_dir(self, job_dir: Path) -> None:
        """Use ``job_dir``: list its scripts, load its jobs.cfg and session.toml/ini if present
        (read in a thread worker)."""
        self.job_dir = job_dir
        box = self.query_one("#job-dir", Input)
        if box.value != str(job_dir):
            box.value = str(job_dir)
        self.loading = True
        self._load_dir(job_dir)

    @work(group="load-dir", exclusive=True, exit_on_error=False)
    async def _load_dir(self, job_dir: Path) -> None:
        try:
            found = await asyncio.to_thread(read_job_dir, job_dir)
        finally:
            self.loading = False
        if job_dir != self.job_dir:
            return
        was_clean = not self.changed
        self.scripts = found.scripts
        for what, exc in found.errors:
            self.awsac.report_error(what, exc)
        loaded = []
        if found.spec is not None:
            self.spec_text = found.spec_text
            self.load_spec_values(found.spec)
            loaded.append(found.spec_name or "session.toml")
        if found.cfg_text is not None and found.lines:
            self.cfg_text = found.cfg_text
            self.lines = list(found.lines)
            loaded.append("jobs.cfg")
        if loaded:
            self.notify(f"loaded {' + '.join(loaded)} from {job_dir}")
        self.show_lines()
        self._rebaseline(was_clean)
        self.revalidate()

    def load_spec_values(self, spec: SessionSpec) -> None:
        self.loaded_spec = spec
        self.query_one("#shortdescr", Input).value = spec.shortdescr
        self.query_one("#bucket", Input).value = spec.bucket
        self.query_one("#status-store", Select).value = spec.status_store
        self.query_one("#jobs-per-instance", Input).value = (
            str(spec.jobs_per_instance) if spec.jobs_per_instance else ""
        )
        minutes = getattr(spec, "job_minutes", None)
        self.query_one("#job-minutes", Input).value = f"{minutes:g}" if minutes else ""
        self.set_choices(self.choices)

    # ---- lines --------------------------------------------------------------------------

    def numbered(self, lines: list[JobLine] | None = None) -> list[JobLine]:
        """The lines with the line numbers they have in the jobs.cfg that saving writes."""
        lines = self.lines if lines is None else lines
        _, numbers = format_jobs_cfg_keeping(self.cfg_text or "", lines, JOBS_CFG_HEADER)
        return [replace(jl, lineno=n) for jl, n in zip(lines, numbers, strict=True)]

    def show_lines(self) -> None:
        table = self.query_one("#lines", KeyedTable)
        descr = {s.snapshot_id: s.description for s in self.choices.snapshots}
        rows = {}
        first = 1
        for k, line in enumerate(self.numbered()):
            snap = line.snapshot or NO_SNAPSHOT
            label = f"{snap} {descr[snap]}" if snap in descr else snap
            last = first + line.count - 1
            rows[f"line{k}"] = (
                str(line.lineno),
                line.script,
                str(line.count),
                f"{first}-{last}" if last > first else str(first),
                label,
            )
            first = last + 1
        with self.app.batch_update():
            table.sync(rows)

    def edit(self, index: int | None) -> None:
        line = self.numbered()[index] if index is not None else None

        def done(result: JobLine | None) -> None:
            if result is None:
                return
            if index is None:
                self.lines.append(result)
            else:
                self.lines[index] = result
            self.show_lines()
            self.revalidate()

        self.app.push_screen(
            JobLineModal(
                line,
                self.choices,
                self.scripts,
                can_make_snapshot=self.awsac.backend.compose_cloud().local,
            ),
            done,
        )

    def _cursor_index(self) -> int | None:
        key = self.query_one("#lines", KeyedTable).cursor_key
        return int(key.removeprefix("line")) if key else None

    def action_add_line(self) -> None:
        self.edit(None)

    def action_edit_line(self) -> None:
        index = self._cursor_index()
        if index is not None:
            self.edit(index)

    def action_jump_lines(self) -> None:
        self.query_one("#lines", KeyedTable).focus()

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
        if action in ("add_line", "edit_line", "delete_line", "quit") and isinstance(
            self.focused, Input
        ):
            return False
        if action in ("edit_line", "delete_line") and not self.lines:
            return False
        if action == "start" and getattr(self.app, "read_only", False):
            return None  # read-only: shown disabled
        return True

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()

    # ---- the spec, validation and the plan ---------------------------------------------

    def _value(self, selector: str) -> str:
        widget = self.query_one(selector)
        if isinstance(widget, Select):
            return "" if widget.value is Select.NULL else str(widget.value)
        return widget.value.strip()  # type: ignore[attr-defined]

    def build_spec(self) -> SessionSpec:
        jpi = self._value("#jobs-per-instance")
        base = self.loaded_spec or SessionSpec("", "", "", "")
        image = self._value("#image")
        cloud = base.cloud
        if cloud == specmod.CloudProfile():  # where the draft is composed and will run
            cloud = self.awsac.backend.compose_cloud()
        spec = replace(
            base,
            instance_type=self._value("#instance-type"),
            image_id=image,
            # a picked image of the account's own: the stated owner belonged to the old one
            image_owner=base.image_owner if image == base.image_id else None,
            bucket=self._value("#bucket"),
            shortdescr=self._value("#shortdescr"),
            key_name=self._value("#key-pair") or None,
            status_store=self._value("#status-store") or DEFAULT_STORE,
            jobs_per_instance=int(jpi) if jpi.isdigit() and int(jpi) > 0 else None,
            n_jobs=None,
            jobs_cfg="jobs.cfg",
            job_dir=None,
            cloud=cloud,
        )
        if "job_minutes" in {f.name for f in dataclasses.fields(SessionSpec)}:
            spec = replace(spec, job_minutes=self.job_minutes())  # type: ignore[call-arg]
        return spec

    def job_minutes(self) -> float | None:
        try:
            value = float(self._value("#job-minutes") or 0)
        except ValueError:
            return None
        return value if value > 0 else None

    def cores_per_instance(self, spec: SessionSpec) -> int:
        vcpus = next(
            (t.vcpus for t in self.choices.instance_types if t.name == spec.instance_type), 1
        )
        return min(vcpus, spec.jobs_per_instance) if spec.jobs_per_instance else vcpus

    def validate(self, spec: SessionSpec) -> list[str]:
        problems: list[str] = []
        if self.job_dir is None:
            problems.append("job dir: give the directory with your job scripts (enter loads it)")
        elif self.loading:
            problems.append(f"job dir: reading {self.job_dir} …")
        elif not self.scripts:
            problems.append(f"job dir: {self.job_dir} is not a directory with job scripts")
        lines = self.numbered()
        if not lines:
            problems.append("jobs.cfg: no job lines (press a on the job lines to add one)")
        elif self.scripts:
            problems += check_scripts_exist(lines, self.scripts, "jobs.cfg")
        problems += specmod.validate_spec(spec, lines or None)
        return problems

    def refs_key(self, spec: SessionSpec) -> tuple:
        return (
            spec.cloud,
            spec.image_id,
            tuple((jl.snapshot, jl.lineno) for jl in self.numbered()),
        )

    @on(Input.Changed)
    @on(Select.Changed)
    def form_changed(self) -> None:
        self.revalidate()

    def revalidate(self) -> None:
        if not self.is_mounted:
            return
        spec = self.build_spec()
        local = self.validate(spec)
        key = self.refs_key(spec)
        if not local and key != self.refs_checked:
            self.check_refs(spec, key)
        refs_known = key == self.refs_checked
        self.problems = local + (self.ref_problems if refs_known else [])
        n = sum(line.count for line in self.lines)
        itype = next((t for t in self.choices.instance_types if t.name == spec.instance_type), None)
        self.query_one("#plan", Static).update(
            describe_plan(
                PlanInput(
                    n,
                    self.cores_per_instance(spec),
                    spec.instance_type,
                    itype.hourly_price if itype else None,
                    queue=getattr(spec, "assignment", "static") == "queue",
                    max_instances=getattr(spec, "max_instances", None),
                    job_minutes=self.job_minutes(),
                    vcpu_quota=getattr(self.quota, "value", None)
                    if getattr(self.quota, "unit", "") == "vCPUs"
                    else None,
                    vcpus=itype.vcpus if itype else None,
                    instance_quota=getattr(self.quota, "value", None)
                    if getattr(self.quota, "unit", "") == "instances"
                    else None,
                )
            )
        )
        t = Text()
        if self.problems:
            for k, p in enumerate(self.problems):
                t.append(("\n" if k else "") + "✗ " + p, style="red")
        elif not refs_known:
            snaps = {jl.snapshot for jl in self.lines if jl.snapshot}
            t.append(
                f"… asking {spec.cloud.describe()} whether the image and "
                f"{len(snaps)} snapshot{'s' if len(snaps) != 1 else ''} exist",
                style="yellow",
            )
        elif self.refs_error:
            t.append(f"✗ could not check the image and snapshots: {self.refs_error}", style="red")
        else:
            t.append("✓ valid: ctrl+s saves, ctrl+g starts", style="green")
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
                (" awsac ─ new session", "bold"),
                f"   {where} ({len(self.scripts)} files)",
                (f"   cloud: {spec.cloud.describe()}", "grey50"),
            )
        )

    @property
    def valid(self) -> bool:
        """Locally valid, and the cloud confirmed the image and every snapshot."""
        spec = self.build_spec()
        return (
            not self.validate(spec)
            and self.refs_key(spec) == self.refs_checked
            and not self.ref_problems
            and not self.refs_error
        )

    @work(group="refs", exclusive=True, exit_on_error=False)
    async def check_refs(self, spec: SessionSpec, key: tuple) -> None:
        await asyncio.sleep(REFS_DEBOUNCE)  # typing: ask once the form is quiet
        try:
            problems = await self.awsac.backend.check_references(
                spec, self.numbered(), self.job_dir or Path.cwd()
            )
            error = None
        except Exception as exc:  # noqa: BLE001 - shown in the form
            problems, error = [], str(exc) or type(exc).__name__
        self.ref_problems, self.refs_error, self.refs_checked = problems, error, key
        self.revalidate()

    # ---- save and start -----------------------------------------------------------------

    async def _ready(self, verb: str) -> SessionSpec | None:
        """The spec when the draft is valid (waiting for the cloud's answer), else None."""
        spec = self.build_spec()
        self.revalidate()
        if not self.validate(spec) and self.refs_key(spec) != self.refs_checked:
            worker = self.check_refs(spec, self.refs_key(spec))
            await worker.wait()
        if not self.valid:
            self.revalidate()
            self.notify(
                f"cannot {verb}: {len(self.problems) or 1} problem(s) shown below",
                severity="error",
            )
            return None
        return spec

    async def _save(self, spec: SessionSpec) -> bool:
        """Write jobs.cfg and session.toml, keeping the user's comments; ask before replacing
        a file that changed since it was read."""
        assert self.job_dir is not None
        job_dir = self.job_dir
        lines = list(self.lines)
        cfg_text, _ = format_jobs_cfg_keeping(self.cfg_text or "", lines, JOBS_CFG_HEADER)
        n = sum(jl.count for jl in lines)
        keep_n = self.loaded_spec is not None and self.loaded_spec.n_jobs is not None
        spec_text = specmod.update_spec_text(
            self.spec_text or "", replace(spec, n_jobs=n if keep_n else None), SPEC_HEADER
        )
        targets = [
            (job_dir / "jobs.cfg", cfg_text, self.cfg_text),
            (job_dir / "session.toml", spec_text, self.spec_text),
        ]
        for path, _, read in targets:
            now = await asyncio.to_thread(_read_if_exists, path)
            if now is not None and now != (read or "") and now != _:
                why = "changed since it was read" if read is not None else "was not read here"
                ok = await self.app.push_screen_wait(
                    ConfirmModal(
                        "overwrite?",
                        f"{path} exists and {why}. Replace it with the draft?",
                        yes="Replace",
                        danger=True,
                    )
                )
                if not ok:
                    self.notify("not saved", severity="warning")
                    return False
        try:
            for path, text, _ in targets:
                await asyncio.to_thread(atomic_write, path, text.encode("utf-8"), 0o644)
        except OSError as exc:
            self.awsac.report_error("save", exc)
            return False
        self.cfg_text, self.spec_text = cfg_text, spec_text
        self.loaded_spec = spec
        self.saved = self.draft()
        self.show_lines()
        self.notify(f"wrote jobs.cfg and session.toml in {job_dir}")
        return True

    def action_save(self) -> None:
        self.save_draft()

    @work(group="verbs", exclusive=True, exit_on_error=False)
    async def save_draft(self) -> bool:
        spec = await self._ready("save")
        if spec is None:
            return False
        return await self._save(spec)

    def action_start(self) -> None:
        self.start_session()

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
    async def start_session(self) -> None:
        spec = await self._ready("start")
        if spec is None or self.job_dir is None:
            return
        # jobs.cfg travels in the session archive: write it (and session.toml) first
        if not await self._save(spec):
            return
        lines, job_dir = self.numbered(), self.job_dir
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

    def leave(self, then) -> None:
        """Run ``then`` now, or after the user agreed to drop a changed draft."""
        if not self.changed:
            then()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                then()

        self.app.push_screen(
            ConfirmModal(
                "discard the draft?",
                "This draft has changes that are not saved (ctrl+s saves them). Discard them?",
                yes="Discard",
                danger=True,
            ),
            answered,
        )

    def action_back(self) -> None:
        self.leave(self.app.pop_screen)

    def action_quit(self) -> None:
        self.leave(self.app.exit)
