"""The awsac Textual app: takes a Backend in its constructor and runs the screens on it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

from awsac_agent.errors import AwsacError
from textual import work
from textual.app import App, SuspendNotSupported
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.events import AppBlur, AppFocus

from awsac_tui.ui.backend import Backend, format_command
from awsac_tui.ui.screens.modals import ConfirmModal, MessageModal, ProgressModal


class ActionsProvider(Provider):
    """Command palette entries for every binding of the current screen, plus the app's own."""

    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        screen = self.screen
        seen: set[str] = set()
        out: list[tuple[str, str, Callable[[], object]]] = []
        for node, label in (
            (screen, type(screen).__name__.removesuffix("Screen").lower()),
            (self.app, "app"),
        ):
            for binding in node.BINDINGS:
                if not isinstance(binding, Binding) or not binding.description:
                    continue
                if binding.action in seen:
                    continue
                seen.add(binding.action)
                title = f"{label}: {binding.description}"
                help_text = f"key {binding.key_display or binding.key}"
                out.append((title, help_text, partial(node.run_action, binding.action)))
        return out

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)


class AwsacApp(App[int]):
    """Sessions, compose, live session view and logs, on top of a Backend."""

    CSS_PATH = "app.tcss"
    TITLE = "awsac"
    COMMANDS = App.COMMANDS | {ActionsProvider}
    BINDINGS = [
        # Tab moves the focus the moment the app reads it: Textual (8.2) forwards the keys that
        # arrive in the same read as a Tab to the widget focused *before* it, so "ab<Tab>cd"
        # typed fast ends as "abcd" in one box (docs/tui.md has the upstream report). A
        # priority binding changes the focus before the next key is forwarded.
        Binding("tab", "focus_next", show=False, priority=True),
        Binding("shift+tab", "focus_previous", show=False, priority=True),
        Binding("ctrl+t", "toggle_dark", "dark/light theme", show=False),
        Binding("question_mark", "help", "more", key_display="?"),
    ]

    def __init__(
        self,
        backend: Backend,
        *,
        interval_scale: float = 1.0,
        results_dir: Path | None = None,
        start_screen: str | None = None,
        read_only: bool = False,
    ) -> None:
        super().__init__()
        self.backend = backend
        self.read_only = read_only
        """Disables the actions that change the cloud (start, kill, terminate, cleanup)."""
        self.auto_retry = False
        """Run lost jobs again by themselves, up to the session's max_attempts (key A)."""
        self.interval_scale = interval_scale
        self.results_dir = results_dir or Path.cwd()
        self.in_foreground = True
        self._start_screen = start_screen
        self.theme = "textual-dark"

    def scale_interval(self, seconds: float) -> float:
        """A refresh interval scaled by the configured factor."""
        return seconds * self.interval_scale

    def on_mount(self) -> None:
        from awsac_tui.ui.screens.sessions import SessionsScreen

        self.push_screen(SessionsScreen())
        if self._start_screen == "compose":
            from awsac_tui.ui.screens.compose import ComposeScreen

            self.push_screen(ComposeScreen())
        elif self._start_screen:
            self.open_session(self._start_screen)

    def on_app_blur(self, event: AppBlur) -> None:
        self.in_foreground = False

    def on_app_focus(self, event: AppFocus) -> None:
        self.in_foreground = True

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def action_help(self) -> None:
        lines = []
        seen: set[str] = set()
        for node in (self.screen, self):  # each key once, the screen's own meaning first
            ours = [c for c in type(node).__mro__ if c.__module__.startswith("awsac_tui")]
            for cls in ours:
                for b in cls.__dict__.get("BINDINGS", ()):
                    if isinstance(b, Binding) and b.description and b.key not in seen:
                        seen.add(b.key)
                        lines.append(f"{(b.key_display or b.key):>10}  {b.description}")
        lines.append(f"{'ctrl+p':>10}  command palette")
        self.push_screen(MessageModal("keys", "\n".join(lines)))

    # ---- verbs shared by several screens ------------------------------------------------

    def open_session(self, session_id: str) -> None:
        from awsac_tui.ui.screens.session import SessionScreen

        self.push_screen(SessionScreen(session_id))

    def report_error(self, what: str, exc: BaseException) -> None:
        """Show an error as a notification; AwsacError messages already name the fix."""
        message = str(exc) if isinstance(exc, AwsacError) else f"{type(exc).__name__}: {exc}"
        self.notify(f"{what}: {message}", severity="error", timeout=8)

    @work(group="verbs", exit_on_error=False)
    async def get_results(self, session_id: str) -> None:
        modal = ProgressModal(f"results of {session_id}")
        await self.push_screen(modal)
        try:
            paths = await self.backend.results(session_id, self.results_dir, modal.report)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            modal.dismiss(None)
            self.report_error("results", exc)
            return
        modal.dismiss(None)
        where = paths[0].parent if paths else self.results_dir
        self.notify(f"{len(paths)} result file(s) in {where}")

    @work(group="verbs", exit_on_error=False)
    async def cleanup_session(
        self, session_id: str, after: Callable[[], None] | None = None
    ) -> None:
        """Show what cleanup would remove (the session API's plan: outputs never downloaded and
        running jobs named), then clean up by the same rules as `awsac cleanup` once confirmed."""
        try:
            plan = await self.backend.cleanup_plan(session_id)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.report_error("cleanup", exc)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._cleanup(session_id, after)

        self.push_screen(
            ConfirmModal(
                "cleanup",
                f"Remove everything left of session {session_id}?\n{plan}",
                yes="Clean up",
                danger=True,
            ),
            answered,
        )

    @work(group="verbs", exit_on_error=False)
    async def _cleanup(self, session_id: str, after: Callable[[], None] | None) -> None:
        try:
            removed = await self.backend.cleanup(session_id)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.report_error("cleanup", exc)
            return
        text = "\n".join(removed) if removed else "nothing was left"
        self.push_screen(MessageModal(f"cleanup of {session_id}", text))
        if after:
            after()

    @work(group="verbs", exit_on_error=False)
    async def run_ssh(self, session_id: str, instance_id: str) -> None:
        """Suspend the app and run ssh; when suspending is impossible, show the command."""
        try:
            argv = await self.backend.ssh_command(session_id, instance_id)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.report_error("ssh", exc)
            return
        try:
            with self.suspend():
                # the shell starts on a clean screen, not under a stale frame of the app
                sys.stdout.write("\x1b[H\x1b[2J")
                sys.stdout.flush()
                subprocess.call(argv)
            self.refresh(repaint=True, layout=True)  # back: every cell drawn again
        except SuspendNotSupported:
            self.push_screen(MessageModal("ssh (run this in a terminal)", format_command(argv)))
        except OSError as exc:
            self.report_error("ssh", exc)

    async def on_unmount(self) -> None:
        close = getattr(self.backend, "aclose", None)
        if close is not None:
            await close()


def refresh_scale_from_env() -> float:
    """``AWSAC_REFRESH_SCALE`` (e.g. 2 = refresh half as often), default 1."""
    text = os.environ.get("AWSAC_REFRESH_SCALE", "").strip()
    if not text:
        return 1.0
    try:
        value = float(text)
    except ValueError:
        raise AwsacError(
            f"AWSAC_REFRESH_SCALE={text!r} is not a number (use e.g. 2 to refresh half as often)"
        ) from None
    if value <= 0:
        raise AwsacError(f"AWSAC_REFRESH_SCALE={text!r} must be greater than 0")
    return value


def run_app(backend: Backend | None = None, *, interval_scale: float | None = None) -> int:
    """Run the TUI (``awsac`` with no arguments); the default backend is the live client.

    Refresh intervals adapt to the session (fast while instances start, slower when steady);
    ``interval_scale`` (or ``AWSAC_REFRESH_SCALE``) multiplies them. ``AWSAC_READ_ONLY=1``
    disables start, kill, terminate and cleanup.
    """
    if backend is None:
        from awsac_tui.ui.live import LiveBackend

        backend = LiveBackend()
    scale = interval_scale if interval_scale is not None else refresh_scale_from_env()
    read_only = os.environ.get("AWSAC_READ_ONLY", "").strip().lower() in ("1", "true", "yes")
    app = AwsacApp(backend, interval_scale=scale, read_only=read_only)
    result = app.run()
    return result if isinstance(result, int) else (app.return_code or 0)
