"""The session timeline: one row per instance, one bar per job coloured by its status.

Jobs of one instance that overlap in time get their own lanes under the instance's row, so a
person sees at a glance what ran where and for how long. Scales to the session's elapsed time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from awsac_tui.ui.widgets.status import STATUS_STYLE
from awsac_tui.views import SessionSnapshot

LABEL_WIDTH = 9
FLAG_WIDTH = 8  # room for ' silent' / ' gone' after the bars


@dataclass(frozen=True)
class Bar:
    jobnr: int
    status: str
    start: datetime
    end: datetime | None  # None: still running


@dataclass(frozen=True)
class Lane:
    label: str  # "LI 0" on the first lane of an instance, "" on the others
    bars: tuple[Bar, ...]
    flag: str = ""  # "silent" / "gone"


def build_lanes(snap: SessionSnapshot) -> tuple[list[Lane], datetime | None]:
    """Lanes per launch index, and the session's start time (earliest launch or job start)."""
    by_li: dict[int, list[Bar]] = {}
    starts: list[datetime] = [i.launch_time for i in snap.instances if i.launch_time]
    for job in snap.jobs:
        if job.runstarttime is None or job.launchindex is None:
            continue
        starts.append(job.runstarttime)
        end = job.saveendtime or job.runendtime
        if job.status in ("running", "waitforsave", "saving"):
            end = None
        by_li.setdefault(job.launchindex, []).append(
            Bar(job.jobnr, job.status, job.runstarttime, end)
        )
    flags: dict[int, str] = {}
    for inst in snap.instances:
        if inst.launchindex is None:
            continue
        by_li.setdefault(inst.launchindex, [])
        if inst.silent:
            flags[inst.launchindex] = "silent"
        elif inst.state in ("terminated", "shutting-down"):
            flags[inst.launchindex] = "gone"
    lanes: list[Lane] = []
    for li in sorted(by_li):
        bars = sorted(by_li[li], key=lambda b: (b.start, b.jobnr))
        packed: list[list[Bar]] = []
        for bar in bars:
            for lane in packed:
                last = lane[-1]
                if last.end is not None and last.end <= bar.start:
                    lane.append(bar)
                    break
            else:
                packed.append([bar])
        if not packed:
            packed = [[]]
        for k, lane in enumerate(packed):
            lanes.append(
                Lane(f"LI {li}" if k == 0 else "", tuple(lane), flags.get(li, "") if k == 0 else "")
            )
    return lanes, (min(starts) if starts else None)


class Timeline(ScrollView, can_focus=True):
    """What ran where and for how long, scaled to the session's elapsed time."""

    DEFAULT_CSS = """
    Timeline { height: auto; max-height: 10; scrollbar-size-vertical: 1; overflow-x: hidden; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._lanes: list[Lane] = []
        self._t0: datetime | None = None
        self._now: datetime | None = None

    @property
    def lanes(self) -> list[Lane]:
        return self._lanes

    def update_snapshot(self, snap: SessionSnapshot, now: datetime) -> None:
        self._lanes, self._t0 = build_lanes(snap)
        self._now = now
        self.virtual_size = Size(self.size.width, len(self._lanes))
        self.refresh()

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(1, len(self._lanes))

    def lane_text(self, lane: Lane, width: int) -> Text:
        text = Text(f"{lane.label:<{LABEL_WIDTH - 2}}", style="bold" if lane.label else "")
        text.append("│ ", style="grey50")
        span = width - LABEL_WIDTH - FLAG_WIDTH
        if span <= 0 or self._t0 is None or self._now is None:
            return text
        total = max((self._now - self._t0).total_seconds(), 1.0)

        def col(t: datetime) -> int:
            return max(0, min(span, int((t - self._t0).total_seconds() / total * span)))

        cells: list[tuple[str, str]] = [(" ", "")] * span
        for bar in lane.bars:
            a = col(bar.start)
            b = col(bar.end or self._now)
            b = max(b, a + 1)
            style = STATUS_STYLE.get(bar.status, "")
            label = str(bar.jobnr)
            for x in range(a, min(b, span)):
                cells[x] = ("█" if bar.status != "pending" else "░", style)
            # the job number inside its bar when it fits, in reverse video
            if b - a >= len(label) + 2:
                mid = a + (b - a - len(label)) // 2
                for k, ch in enumerate(label):
                    cells[mid + k] = (ch, f"{style} reverse")
            if bar.end is None and b < span:
                cells[b] = ("▶", style)
        for ch, style in cells:
            text.append(ch, style=style)
        if lane.flag:
            text.append(
                f" {lane.flag}", style="bold reverse yellow" if lane.flag == "silent" else "grey50"
            )
        return text

    def render_line(self, y: int) -> Strip:
        _, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if index >= len(self._lanes):
            return Strip.blank(width, base)
        text = self.lane_text(self._lanes[index], width)
        text.truncate(width)
        segments = list(text.render(self.app.console))
        strip = Strip(segments).apply_style(base) if segments else Strip.blank(width, base)
        return strip.extend_cell_length(width, base).crop(0, width)
