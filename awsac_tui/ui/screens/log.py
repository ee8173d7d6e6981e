"""The log viewer: a job's live tail or saved log, or an instance's console output.

A ``Log`` widget with ``max_lines`` fed by batched ``write_lines``; follow, wrap, search, save.
"""

from __future__ import annotations

import asyncio
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path

from awsac_agent.status import ACTIVE, PENDING
from rich.highlighter import Highlighter
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Input, Label, Log

from awsac_tui.ui.screens.base import PollingScreen, TitleBar, footer, show_prompt
from awsac_tui.views import JobView

MAX_LINES = 200_000
NOT_STARTED = "Not started yet: the job has no output. This view refreshes by itself."
NO_CONSOLE = "No console output yet (an instance prints it while it boots)."


class SearchHighlighter(Highlighter):
    """Highlights every occurrence of the search text (case-insensitive)."""

    def __init__(self) -> None:
        self.pattern: re.Pattern[str] | None = None

    def set_query(self, query: str) -> None:
        self.pattern = re.compile(re.escape(query), re.IGNORECASE) if query else None

    def highlight(self, text: Text) -> None:
        if self.pattern is None:
            return
        for m in self.pattern.finditer(text.plain):
            text.stylize("bold black on yellow", m.start(), m.end())


def new_lines(old: Sequence[str], new: Sequence[str]) -> tuple[bool, list[str]]:
    """Lines of ``new`` that follow what ``old`` already shows, for a rolling tail.

    Returns (append, lines): append=True means add ``lines`` after ``old``; False means the
    tail moved past everything shown, so replace the whole view by ``lines``.
    """
    if not old:
        return True, list(new)
    if len(new) >= len(old) and list(new[: len(old)]) == list(old):
        return True, list(new[len(old) :])
    # a rolling tail: the longest suffix of ``old`` that is a prefix of ``new``
    first = new[0] if new else None
    n_old = len(old)
    for start in range(max(0, n_old - len(new)), n_old):
        if old[start] == first and list(old[start:]) == list(new[: n_old - start]):
            return True, list(new[n_old - start :])
    return False, list(new)


WRAP_BELOW = 120  # terminals narrower than this start with wrap on


class LogScreen(PollingScreen):
    """One log: follows it while it grows, with search and save."""

    BINDINGS = [
        Binding("escape", "back", "back"),
        Binding("f", "follow", "follow"),
        Binding("w", "wrap", "wrap"),
        Binding("slash", "search", "search", key_display="/"),
        Binding("n", "next_match", "next", show=False),
        Binding("N", "previous_match", "previous", show=False),
        Binding("ctrl+s", "save", "save"),
        Binding("ctrl+r", "force_refresh", "refresh", show=False),
        Binding("q", "app.quit", "quit", show=False),
    ]

    def __init__(
        self,
        session_id: str,
        title: str,
        *,
        jobnr: int | None = None,
        instance_id: str | None = None,
        live: bool = False,
        save_name: str = "log.txt",
    ) -> None:
        super().__init__(classes="log-screen")
        self.session_id = session_id
        self.title_text = title
        self.jobnr = jobnr
        self.instance_id = instance_id
        self.live = live
        self.save_name = save_name
        self.raw_lines: list[str] = []
        self.follow = True
        self.wrap = False
        self.query_text = ""
        self.match_line: int | None = None
        self.highlighter = SearchHighlighter()
        self.started = True
        """False for a job that has not started: its empty log says so."""
        self.final = False
        """True once nothing more can come (the console of an instance that is gone)."""
        self.placeholder_shown = False

    @classmethod
    def for_job(cls, session_id: str, job: JobView) -> LogScreen:
        live = job.status in ACTIVE or job.status == PENDING
        where = f" · {job.instance_id}" if job.instance_id else ""
        screen = cls(
            session_id,
            f"job {job.jobnr} · {job.shellscript or '?'}{where}",
            jobnr=job.jobnr,
            live=live,
            save_name=f"{session_id}_job_{job.jobnr}.log",
        )
        screen.started = job.runstarttime is not None or job.status != PENDING
        return screen

    @classmethod
    def for_console(cls, session_id: str, instance_id: str) -> LogScreen:
        return cls(
            session_id,
            f"console output · {instance_id}",
            instance_id=instance_id,
            live=True,
            save_name=f"{session_id}_{instance_id}_console.log",
        )

    def compose(self) -> ComposeResult:
        yield TitleBar("", id="titlebar")
        log = Log(max_lines=MAX_LINES, highlight=True, id="log")
        log.highlighter = self.highlighter
        yield log
        with Horizontal(id="search-bar", classes="prompt-bar", disabled=True):
            yield Label("search /", classes="prompt")
            yield Input(
                placeholder="text; enter: next match, esc: close", id="search", compact=True
            )
        yield footer()

    def on_mount(self) -> None:
        self.wrap = self.app.size.width < WRAP_BELOW  # no horizontal scrolling over ssh
        log = self.query_one(Log)
        log.styles.overflow_x = "hidden" if self.wrap else "auto"
        log.focus()
        self.update_title()
        super().on_mount()

    def update_title(self) -> None:
        t = Text(f" {self.title_text}", style="bold")
        if self.final:
            t.append(" · final (the instance is gone)", style="grey50")
        elif self.live:
            t.append(f" · live (every {self.next_interval():g} s)", style="grey50")
        else:
            t.append(" · saved", style="grey50")
        t.append("   follow ")
        t.append("●" if self.follow else "○", style="green" if self.follow else "grey50")
        t.append(" wrap ")
        t.append("●" if self.wrap else "○", style="green" if self.wrap else "grey50")
        if self.query_text:
            t.append(f"  /{self.query_text}", style="yellow")
        self.query_one(TitleBar).update(t)

    async def fetch(self) -> str:
        backend = self.awsac.backend
        if self.jobnr is not None:
            return await backend.job_log(self.session_id, self.jobnr)
        assert self.instance_id is not None
        text = await backend.console_output(self.session_id, self.instance_id)
        state = backend.instance_state(self.session_id, self.instance_id)
        if state == "terminated":  # what it printed is all there will be
            self.final, self.live = True, False
        return text

    def next_interval(self) -> float:
        if not self.live:
            return 3600.0
        return self.awsac.scale_interval(5.0 if self.jobnr is not None else 10.0)

    def display_lines(self, lines: Sequence[str]) -> list[str]:
        if not self.wrap:
            return list(lines)
        width = self.query_one(Log).scrollable_content_region.width
        if width < 10:  # not laid out yet: the screen's width less the scrollbar
            width = self.app.size.width - 1
        width = max(20, width - 1)
        out: list[str] = []
        for line in lines:
            out.extend(
                textwrap.wrap(line, width, replace_whitespace=False, drop_whitespace=False) or [""]
            )
        return out

    def apply(self, data: object) -> None:
        text: str = data  # type: ignore[assignment]
        lines = text.splitlines()
        log = self.query_one(Log)
        if not lines and not self.raw_lines:  # say why the view is empty
            if not self.placeholder_shown:
                log.clear()
                log.write_line(
                    NOT_STARTED
                    if self.jobnr is not None and not self.started
                    else NO_CONSOLE
                    if self.jobnr is None
                    else "No output yet."
                )
                self.placeholder_shown = True
            self.update_title()
            return
        if self.placeholder_shown:
            log.clear()
            self.placeholder_shown = False
        append, fresh = new_lines(self.raw_lines, lines)
        if append:
            if not fresh:
                self.update_title()
                return
            self.raw_lines.extend(fresh)
        else:
            self.raw_lines = list(lines)
            log.clear()
        if len(self.raw_lines) > MAX_LINES:
            del self.raw_lines[: len(self.raw_lines) - MAX_LINES]
        log.write_lines(self.display_lines(fresh), scroll_end=self.follow)
        self.update_title()

    def on_resize(self) -> None:
        if self.wrap and self.raw_lines:
            self.rewrite()

    def rewrite(self) -> None:
        log = self.query_one(Log)
        log.styles.overflow_x = "hidden" if self.wrap else "auto"
        log.clear()
        log.write_lines(self.display_lines(self.raw_lines), scroll_end=self.follow)

    # ---- actions ------------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_follow(self) -> None:
        self.follow = not self.follow
        log = self.query_one(Log)
        log.auto_scroll = self.follow
        if self.follow:
            log.scroll_end(animate=False)
        self.update_title()

    def action_wrap(self) -> None:
        self.wrap = not self.wrap
        self.rewrite()
        self.update_title()

    def action_search(self) -> None:
        show_prompt(self.query_one("#search-bar"), True)
        self.query_one("#search", Input).focus()

    @on(Input.Changed, "#search")
    def search_changed(self, event: Input.Changed) -> None:
        self.query_text = event.value
        self.highlighter.set_query(event.value)
        self.query_one(Log).refresh()
        self.update_title()

    @on(Input.Submitted, "#search")
    def search_submitted(self) -> None:
        self.action_next_match()

    def on_key(self, event) -> None:
        if event.key == "escape" and self.focused is self.query_one("#search"):
            show_prompt(self.query_one("#search-bar"), False)
            self.query_one(Log).focus()
            event.stop()
            event.prevent_default()

    def _find(self, step: int) -> None:
        if not self.query_text:
            return
        log = self.query_one(Log)
        lines = log.lines
        if not lines:
            return
        needle = self.query_text.lower()
        start = self.match_line if self.match_line is not None else int(log.scroll_y) - step
        n = len(lines)
        for k in range(1, n + 1):
            y = (start + step * k) % n
            if needle in lines[y].lower():
                self.match_line = y
                if self.follow:
                    self.action_follow()
                log.scroll_to(y=max(0, y - log.size.height // 2), animate=False)
                return
        self.notify(f"{self.query_text!r} not found", severity="warning")

    def action_next_match(self) -> None:
        self._find(+1)

    def action_previous_match(self) -> None:
        self._find(-1)

    def action_save(self) -> None:
        self.save_log()

    @work(group="verbs", exit_on_error=False)
    async def save_log(self) -> None:
        """Write the log to the results dir, in a thread (a big log on a slow disk)."""
        path = Path(self.awsac.results_dir) / self.save_name
        text = "\n".join(self.raw_lines) + "\n"
        try:
            await asyncio.to_thread(path.write_text, text, encoding="utf-8")
        except OSError as exc:
            self.awsac.report_error(f"save {path}", exc)
            return
        self.notify(f"saved {len(self.raw_lines)} lines to {path}")
