"""Shared behaviour of live screens: one polling worker, adaptive interval, pause, force refresh."""

from __future__ import annotations

import asyncio

from textual import work
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static

from awsac_tui.ui.host import DANGEROUS_ACTIONS, AwsacHost


class TitleBar(Static):
    """One line at the top: where we are, the cloud, the refresh rate."""


def show_prompt(bar: Widget, shown: bool) -> None:
    """Show or hide a search/filter bar; hidden, its box is disabled, so focus never lands in
    a box the user cannot see (keys would type into it)."""
    bar.display = shown
    bar.disabled = not shown


def footer() -> Footer:
    """The key line of every screen: the screen's first keys, then ``? more`` (every key and
    the command palette are in the help), few enough to fit 80 columns."""
    return Footer(show_command_palette=False)


class PollingScreen(Screen):
    """A screen that refreshes its data in one exclusive worker (group ``poll``).

    Subclasses implement ``fetch`` (await the backend) and ``apply`` (update widgets) and may
    override ``next_interval``. A failed fetch shows a notice, keeps the last data and backs off.
    Polls pause while a modal (or another screen) is on top or the app is in the background.
    """

    BINDINGS = [
        Binding("ctrl+r", "force_refresh", "refresh", show=False),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._wake = asyncio.Event()
        self.interval: float = 2.0
        self.refreshes = 0
        """Successful refreshes applied (tests wait on it)."""
        self.failures = 0
        self.last_error: str | None = None

    @property
    def awsac(self) -> AwsacHost:
        return self.app  # type: ignore[return-value]

    async def fetch(self) -> object:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, data: object) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def next_interval(self) -> float:
        return self.awsac.scale_interval(5.0)

    def paused(self) -> bool:
        return self.app.screen is not self or not self.awsac.in_foreground

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in DANGEROUS_ACTIONS and getattr(self.app, "read_only", False):
            return None  # shown disabled in the footer
        return True

    def on_mount(self) -> None:
        self.poll()

    def on_screen_resume(self) -> None:
        self._wake.set()

    def action_force_refresh(self) -> None:
        self._wake.set()

    @work(exclusive=True, group="poll", exit_on_error=False)
    async def poll(self) -> None:
        backoff = 0.0
        while True:
            if not self.paused() or self.refreshes == 0:
                try:
                    data = await self.fetch()
                except Exception as exc:  # noqa: BLE001 - any cloud failure: keep the last data
                    self.failures += 1
                    self.last_error = str(exc) or type(exc).__name__
                    self.notify(
                        f"refresh failed, showing the last data: {self.last_error}",
                        severity="warning",
                        timeout=4,
                    )
                    backoff = min(max(backoff * 2, 2.0), 60.0)
                else:
                    backoff = 0.0
                    self.apply(data)
                    self.refreshes += 1
            self.interval = max(self.next_interval(), backoff)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            except TimeoutError:
                pass
