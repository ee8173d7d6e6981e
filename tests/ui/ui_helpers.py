"""Helpers for the TUI tests: wait for a condition without sleeping, read the screen as text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from polling import wait_for_async
from textual.app import App
from textual.pilot import Pilot

ROOT = Path(__file__).resolve().parents[2]
EVENTGEN = ROOT / "examples" / "eventgen"


async def wait_for(pilot: Pilot, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app run until ``condition()`` holds; fail after ``timeout`` seconds."""
    await wait_for_async(
        condition,
        lambda: pilot.pause(0.01),
        timeout,
        "the app",
        lambda: (
            f"screen {pilot.app.screen!r}; "
            f"notifications: {[n.message for n in pilot.app._notifications]}"
        ),
    )


def screen_text(app: App) -> str:
    """The current screen as plain text (what a person sees, without colours).

    A cell that nothing has painted yet (a screen caught between its layout and its first
    render) reads as blank, as it looks on a terminal, rather than failing the render.
    """
    compositor = app.screen._compositor
    update = compositor.render_update(full=True, screen_stack=app._background_screens)
    lines = []
    for cut_set, strips in zip(compositor.cuts, update.strips, strict=False):
        parts = []
        for start, end, strip in zip(cut_set, cut_set[1:], strips, strict=False):
            parts.append(" " * (end - start) if strip is None else strip.text)
        lines.append("".join(parts))
    return "\n".join(lines) + "\n"


async def wait_for_verbs(app: App) -> None:
    """Wait for the one-shot workers (group ``verbs``); the polling workers never complete."""
    verbs = [w for w in app.workers if w.group == "verbs"]
    if verbs:  # an empty list would mean "every worker", polls included
        await app.workers.wait_for_complete(verbs)
