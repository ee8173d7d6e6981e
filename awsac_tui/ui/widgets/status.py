"""Colours and small renderings of job statuses: coloured counts and a status bar."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

STATUS_STYLE: dict[str, str] = {
    "pending": "grey62",
    "running": "bold dodger_blue1",
    "waitforsave": "cyan",
    "saving": "cyan",
    "finished": "green",
    "failed": "bold red",
    "killed": "magenta",
    "lost": "bold reverse red",
}
STATUS_SHORT: dict[str, str] = {
    "pending": "pend",
    "running": "run",
    "waitforsave": "wait",
    "saving": "save",
    "finished": "fin",
    "failed": "fail",
    "killed": "kill",
    "lost": "lost",
}
INSTANCE_STYLE: dict[str, str] = {
    "pending": "yellow",
    "running": "green",
    "shutting-down": "magenta",
    "terminated": "grey50",
    "stopping": "magenta",
    "stopped": "grey50",
}
BAR_CHAR: dict[str, str] = {
    "finished": "█",
    "saving": "▓",
    "waitforsave": "▓",
    "running": "▒",
    "pending": "░",
    "failed": "█",
    "killed": "█",
    "lost": "█",
}


def status_text(status: str) -> Text:
    """A job status, coloured."""
    return Text(status, style=STATUS_STYLE.get(status, ""))


def instance_state_text(state: str, silent: bool = False) -> Text:
    """An instance state, coloured; a silent instance (running, no job status) is flagged."""
    if silent:
        return Text("silent", style="bold reverse yellow")
    return Text(state, style=INSTANCE_STYLE.get(state, ""))


def status_bar(counts: Iterable[tuple[str, int]], width: int) -> Text:
    """A bar of ``width`` cells split by status, each part in its colour; ``counts`` in the order
    of ``status.count_statuses`` (finished first)."""
    items = [kv for kv in counts if kv[1]]
    total = sum(n for _, n in items)
    text = Text()
    if total == 0 or width <= 0:
        return Text("░" * max(width, 0), style="grey35")
    used = 0
    for k, (status, n) in enumerate(items):
        cells = round(width * n / total) if k < len(items) - 1 else width - used
        cells = max(0, min(cells, width - used))
        if n and cells == 0 and used < width:
            cells = 1
        text.append(BAR_CHAR.get(status, "█") * cells, style=STATUS_STYLE.get(status, ""))
        used += cells
    return text


def counts_text(counts: Iterable[tuple[str, int]], short: bool = True) -> Text:
    """``2 fin 1 run 4 pend`` with each part coloured by its status."""
    text = Text()
    for status, n in counts:
        if not n:
            continue
        if text:
            text.append(" ")
        label = STATUS_SHORT.get(status, status) if short else status
        text.append(f"{n} {label}", style=STATUS_STYLE.get(status, ""))
    return text


def progress_text(done: int, total: int, width: int) -> Text:
    """A progress bar of terminal jobs with the percentage."""
    frac = done / total if total else 0.0
    filled = int(round(frac * width))
    text = Text("▇" * filled, style="green")
    text.append("░" * (width - filled), style="grey35")
    text.append(f" {frac * 100:3.0f}%")
    return text
