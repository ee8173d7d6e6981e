"""The session timeline: one row per instance, one bar per job coloured by its status.

Jobs of one instance that overlap in time get their own lanes under the instance's row, so a
person sees at a glance what ran where and for how long. Scales to the session's elapsed time.
When there are more lanes than rows, it aggregates: each row is a band of launch indexes and
each column shows how busy the band was then (░▒▓█ by the share of its jobs running) in the
colour of what most of them were doing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from awsac_agent.status import ACTIVE
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from awsac_tui.ui.widgets.status import STATUS_STYLE
from awsac_tui.views import INSTANCE_GONE, SessionSnapshot

LABEL_WIDTH = 9
FLAG_WIDTH = 8  # room for ' silent' / ' gone' after the bars


@dataclass(frozen=True)
class Bar:
    jobnr: int
    status: str
    start: datetime
    end: datetime | None  # None: still running


@dataclass(frozen=True)
class Band:
    """Launch indexes ``lo..hi`` on one row: the spans of all their jobs."""

    label: str
    lo: int
    hi: int
    spans: tuple[tuple[str, datetime, datetime | None], ...]  # (status, start, end or running)
    capacity: int  # most jobs the band runs at once (its instances' lanes)
    flag: str = ""  # "2 silent", "3 gone"


# a column of a band has the colour of what most of its jobs were doing then (ties: bad news)
BAND_ORDER = ("lost", "failed", "killed", "running", "saving", "waitforsave", "finished")
BAND_RANK = {status: k for k, status in enumerate(BAND_ORDER)}
SHADES = "░▒▓█"


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
        elif inst.state in INSTANCE_GONE:
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


def build_bands(snap: SessionSnapshot, rows: int) -> tuple[list[Band], datetime | None]:
    """At most ``rows`` bands of consecutive launch indexes, with every job's span."""
    starts: list[datetime] = [i.launch_time for i in snap.instances if i.launch_time]
    lis = sorted(
        {i.launchindex for i in snap.instances if i.launchindex is not None}
        | {j.launchindex for j in snap.jobs if j.launchindex is not None}
    )
    if not lis:
        return [], (min(starts) if starts else None)
    per = -(-len(lis) // max(1, rows))
    groups = [lis[k : k + per] for k in range(0, len(lis), per)]
    band_of = {li: g for g, group in enumerate(groups) for li in group}
    spans: list[list[tuple[str, datetime, datetime | None]]] = [[] for _ in groups]
    per_li: dict[int, int] = {}
    for job in snap.jobs:
        if job.runstarttime is None or job.launchindex is None:
            continue
        starts.append(job.runstarttime)
        end = None if job.status in ACTIVE else (job.saveendtime or job.runendtime)
        spans[band_of[job.launchindex]].append((job.status, job.runstarttime, end))
        per_li[job.launchindex] = per_li.get(job.launchindex, 0) + 1
    silent = [0] * len(groups)
    gone = [0] * len(groups)
    for inst in snap.instances:
        if inst.launchindex is None:
            continue
        if inst.silent:
            silent[band_of[inst.launchindex]] += 1
        elif inst.state in ("terminated", "shutting-down"):
            gone[band_of[inst.launchindex]] += 1
    bands = []
    for g, group in enumerate(groups):
        n = "" if len(group) == 1 else " "  # one instance: its flag as on a lane
        flag = (
            f"{silent[g] if n else ''}{n}silent"
            if silent[g]
            else (f"{gone[g] if n else ''}{n}gone" if gone[g] else "")
        )
        capacity = max(1, sum(max(1, min(per_li.get(li, 1), 64)) for li in group))
        label = f"LI {group[0]}" if len(group) == 1 else f"LI {group[0]}-{group[-1]}"
        bands.append(Band(label, group[0], group[-1], tuple(spans[g]), capacity, flag))
    return bands, (min(starts) if starts else None)


class Timeline(ScrollView, can_focus=True):
    """What ran where and for how long, scaled to the session's elapsed time."""

    DEFAULT_CSS = """
    Timeline { height: auto; max-height: 10; scrollbar-size-vertical: 1; overflow-x: hidden; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._lanes: list[Lane] = []
        self._bands: list[Band] = []
        self._t0: datetime | None = None
        self._now: datetime | None = None
        self._lines: dict[tuple[int, int], Strip] = {}

    @property
    def lanes(self) -> list[Lane]:
        """The per-instance lanes (empty while the timeline aggregates)."""
        return self._lanes

    @property
    def bands(self) -> list[Band]:
        """The bands of launch indexes (empty unless there are more lanes than rows)."""
        return self._bands

    def rows(self) -> int:
        """The rows the timeline may take (its max-height less the border)."""
        max_height = self.styles.max_height
        limit = int(max_height.value) if max_height is not None and max_height.is_cells else 10
        border = 1 if self.styles.border_top[0] not in ("", "none", "hidden") else 0
        return max(1, limit - border)

    def update_snapshot(self, snap: SessionSnapshot, now: datetime) -> None:
        rows = self.rows()
        n_li = len({i.launchindex for i in snap.instances} | {j.launchindex for j in snap.jobs})
        lanes: list[Lane] = []
        if n_li <= rows:
            lanes, self._t0 = build_lanes(snap)
        if n_li > rows or len(lanes) > rows:
            self._lanes = []
            self._bands, self._t0 = build_bands(snap, rows)
        else:
            self._lanes, self._bands = lanes, []
        self._now = now
        self._lines.clear()
        self.virtual_size = Size(self.size.width, self._height())
        self.refresh()

    def on_focus(self) -> None:
        self._lines.clear()

    def on_blur(self) -> None:
        self._lines.clear()

    def _height(self) -> int:
        return len(self._bands) if self._bands else len(self._lanes)

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(1, self._height())

    def _col(self, t: datetime, span: int, total: float) -> int:
        assert self._t0 is not None
        return max(0, min(span, int((t - self._t0).total_seconds() / total * span)))

    def band_text(self, band: Band, width: int) -> Text:
        label_width = max(LABEL_WIDTH - 2, *(len(b.label) for b in self._bands))
        text = Text(f"{band.label:<{label_width}}", style="bold")
        text.append("│ ", style="grey50")
        span = width - label_width - 2 - FLAG_WIDTH
        if span <= 0 or self._t0 is None or self._now is None:
            return text
        total = max((self._now - self._t0).total_seconds(), 1.0)
        # per status, how many of the band's jobs run in each column (difference arrays)
        delta: dict[str, list[int]] = {}
        for status, start, end in band.spans:
            a = self._col(start, span, total)
            b = max(self._col(end or self._now, span, total), a + 1)
            d = delta.setdefault(status, [0] * (span + 1))
            d[min(a, span)] += 1
            d[min(b, span)] -= 1
        running: dict[str, list[int]] = {}
        for status, d in delta.items():
            acc, out = 0, []
            for x in range(span):
                acc += d[x]
                out.append(acc)
            running[status] = out
        for x in range(span):
            busy = sum(r[x] for r in running.values())
            if busy == 0:
                text.append(" ")
                continue
            status = max(
                running, key=lambda st: (running[st][x], -BAND_RANK.get(st, len(BAND_ORDER)))
            )
            share = min(1.0, busy / band.capacity)
            shade = SHADES[min(len(SHADES) - 1, int(share * len(SHADES)))]
            text.append(shade, style=STATUS_STYLE.get(status, ""))
        if band.flag:
            text.append(
                f" {band.flag}", style="bold reverse yellow" if "silent" in band.flag else "grey50"
            )
        return text

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
        if index >= self._height():
            return Strip.blank(width, base)
        cached = self._lines.get((index, width))
        if cached is not None:
            return cached
        if self._bands:
            text = self.band_text(self._bands[index], width)
        else:
            text = self.lane_text(self._lanes[index], width)
        text.truncate(width)
        segments = list(text.render(self.app.console))
        strip = Strip(segments).apply_style(base) if segments else Strip.blank(width, base)
        strip = strip.extend_cell_length(width, base).crop(0, width)
        self._lines[(index, width)] = strip
        return strip
