"""A table keyed by cloud id / job number that renders only the rows on screen (Line API).

Two ways to feed it. ``sync(rows)`` takes every row's cells (small tables) and changes only the
rows that changed. ``sync_source(keys, cells, changed)`` takes the row order and a function that
makes one row's cells, called only for rows that are painted (a 10,000-job session costs what
its ~40 visible rows cost); ``changed`` names the rows whose cells must be made again. Neither
clears the table, so the cursor row and the scroll position are kept. The look and the keys are
those of Textual's DataTable (its component classes), with a row cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

Cell = str | Text
Cells = tuple[Cell, ...]
HEADER = 1  # rows of the header


def _fit(text: Text, width: int) -> int:
    """Crop ``text`` to ``width`` cells, as DataTable shows a one-line cell. Returns the cells
    of padding the column still needs (unstyled, as DataTable pads)."""
    if cell_len(text.plain) > width:
        text.truncate(width, overflow="crop")
    return width - cell_len(text.plain)


@dataclass(frozen=True)
class RowKey:
    value: str


@dataclass(frozen=True)
class Row:
    key: RowKey


class KeyedTable(ScrollView, can_focus=True):
    """A keyed table with diff updates and a row cursor; paints only the visible rows.

    ``drop`` names columns, least useful first, to hide while the table is wider than its
    widget (no horizontal scrollbar eating a row on a narrow terminal); they come back when
    there is room. Hidden columns keep their values (``row_cells`` returns every column).
    ``flex`` names a column whose width (its minimum) grows to fill the room the others leave.
    A column of width None is as wide as its widest cell (for ``sync_source``: of the cells
    made so far; it only grows).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Select", show=False),
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("ctrl+home", "scroll_top", "Top", show=False),
        Binding("ctrl+end", "scroll_bottom", "Bottom", show=False),
        Binding("home", "scroll_top", "Top", show=False),
        Binding("end", "scroll_bottom", "Bottom", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "datatable--cursor",
        "datatable--header",
        "datatable--even-row",
        "datatable--odd-row",
    }

    DEFAULT_CSS = """
    KeyedTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 100%;
        &:focus {
            background-tint: $foreground 5%;
            & > .datatable--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .datatable--header {
                background-tint: $foreground 5%;
            }
        }
        & > .datatable--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .datatable--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .datatable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .datatable--even-row {
            background: $surface-lighten-1 50%;
        }
    }
    """

    class _RowMessage(Message):
        """A message about one row of the table."""

        def __init__(self, table: KeyedTable, cursor_row: int, row_key: RowKey) -> None:
            super().__init__()
            self.data_table = table
            self.cursor_row = cursor_row
            self.row_key = row_key

        @property
        def control(self) -> KeyedTable:
            return self.data_table

    class RowSelected(_RowMessage):
        """Enter (or a click on the cursor row) on a row."""

    class RowHighlighted(_RowMessage):
        """The cursor moved to a row."""

    def __init__(
        self,
        columns: Sequence[tuple[str, str, int | None]],
        *,
        drop: Sequence[str] = (),
        flex: str | None = None,
        cursor_type: str = "row",
        zebra_stripes: bool = False,
        cell_padding: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._column_spec = list(columns)
        self._drop = [k for k in drop if k in {c[0] for c in columns}]
        self._shown = list(range(len(self._column_spec)))
        self._flex = flex
        self._flex_width: int | None = None
        self.zebra_stripes = zebra_stripes
        self.cell_padding = cell_padding
        self._keys: list[str] = []
        self._index: dict[str, int] = {}
        self._cells: dict[str, Cells] = {}  # sync(): every row; sync_source(): rows made
        self._source: Callable[[str], Sequence[Cell]] | None = None
        self._measured: dict[int, int] = {}  # auto-width column -> widest cell seen
        self._lines: dict[tuple[str, bool], Strip] = {}
        self._cursor = 0
        self.sync_count = 0
        """How many syncs ran (tests use it to wait for a tick)."""
        self.cells_made = 0
        """How many rows ``sync_source``'s function made (the cost of painting)."""

    # ---- columns ------------------------------------------------------------------------

    @property
    def column_keys(self) -> list[str]:
        """The keys of every column, shown or hidden, in order."""
        return [key for key, _, _ in self._column_spec]

    @property
    def shown_keys(self) -> list[str]:
        """The keys of the columns shown now."""
        return [self._column_spec[i][0] for i in self._shown]

    def _width(self, i: int) -> int:
        key, label, width = self._column_spec[i]
        if width is not None:
            return width
        if self._source is None:
            return max([cell_len(label), *(cell_len(str(row[i])) for row in self._cells.values())])
        return max(cell_len(label), self._measured.get(i, 0))

    def _shown_widths(self) -> list[int]:
        out = []
        for i in self._shown:
            if self._column_spec[i][0] == self._flex and self._flex_width is not None:
                out.append(self._flex_width)
            else:
                out.append(self._width(i))
        return out

    def on_resize(self) -> None:
        self.fit_columns()
        self._lines.clear()
        self._update_virtual_size()

    def on_focus(self) -> None:
        self._lines.clear()
        self.refresh()

    def on_blur(self) -> None:
        self._lines.clear()
        self.refresh()

    def fit_columns(self) -> None:
        """Show as many columns as fit the widget's width, hiding ``drop`` columns in order."""
        if not (self._drop or self._flex) or not self.is_mounted or self.size.width <= 0:
            return
        room = self.size.width - self.styles.scrollbar_size_vertical
        widths = {i: self._width(i) + 2 * self.cell_padding for i in range(len(self._column_spec))}
        shown = list(range(len(self._column_spec)))
        for key in self._drop:
            if sum(widths[i] for i in shown) <= room:
                break
            shown.remove(self.column_keys.index(key))
        flex_width = None
        if self._flex in self.column_keys and self.column_keys.index(self._flex) in shown:
            i = self.column_keys.index(self._flex)
            flex_width = self._width(i) + max(0, room - sum(widths[k] for k in shown))
        if shown != self._shown or flex_width != self._flex_width:
            self._flex_width = flex_width
            self._shown = shown
            self._lines.clear()
            self._update_virtual_size()
            self.refresh()

    # ---- rows ---------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def ordered_rows(self) -> list[Row]:
        return [Row(RowKey(k)) for k in self._keys]

    def get_row_index(self, key: str) -> int:
        return self._index[key]

    def row_cells(self, key: str) -> Cells | None:
        """The cells of row ``key`` (every column, shown or hidden), or None if it has none."""
        if key not in self._index:
            return None
        cells = self._cells.get(key)
        if cells is None and self._source is not None:
            cells = tuple(self._source(key))
            self.cells_made += 1
            self._cells[key] = cells
            self._measure(cells)
        return cells

    def get_cell(self, key: str, column_key: str) -> Cell:
        cells = self.row_cells(key)
        if cells is None:
            raise KeyError(key)
        return cells[self.column_keys.index(column_key)]

    def _measure(self, cells: Cells) -> None:
        grew = False
        for i, (_, _, width) in enumerate(self._column_spec):
            if width is None:
                w = cell_len(str(cells[i]))
                if w > self._measured.get(i, 0):
                    self._measured[i] = w
                    grew = True
        if grew and self.is_mounted:
            self._lines.clear()
            self.call_after_refresh(self._update_virtual_size)

    def _set_keys(self, keys: list[str]) -> None:
        cursor = self.cursor_key
        self._keys = keys
        self._index = {k: i for i, k in enumerate(keys)}
        if cursor is not None and cursor in self._index:
            self._cursor = self._index[cursor]
        self._cursor = max(0, min(self._cursor, len(keys) - 1))
        self._update_virtual_size()

    def sync(self, rows: Mapping[str, Sequence[Cell]]) -> tuple[int, int, int]:
        """Make the table show ``rows`` (key -> cells); returns (added, changed cells, removed).

        New rows go at the end (``sort`` orders them); the others keep their place.
        """
        self._source = None
        added = changed = removed = 0
        gone = [k for k in self._cells if k not in rows]
        for key in gone:
            del self._cells[key]
            removed += 1
        shown = set(self._shown)
        new_keys: list[str] = []
        for key, cells in rows.items():
            cells = tuple(cells)
            old = self._cells.get(key)
            if old is None:
                new_keys.append(key)
                added += 1
            elif old != cells:
                changed += sum(
                    1
                    for i, (a, b) in enumerate(zip(old, cells, strict=True))
                    if a != b and i in shown
                )
                self._forget_lines(key)
            self._cells[key] = cells
        if gone or new_keys:
            keep = [k for k in self._keys if k in self._cells]
            self._set_keys(keep + new_keys)
        if added or removed:
            self.fit_columns()
        if added or removed or changed:
            self.refresh()
        self.sync_count += 1
        return added, changed, removed

    def sync_source(
        self,
        keys: Sequence[str],
        cells: Callable[[str], Sequence[Cell]],
        changed: Iterable[str] | None = None,
    ) -> None:
        """Show the rows ``keys`` (in this order) whose cells ``cells(key)`` makes when a row is
        painted; ``changed``: rows to make again (None: all of them, e.g. a clock column)."""
        first = self._source is None
        self._source = cells
        keys = list(keys)
        if keys != self._keys:
            self._set_keys(keys)
            live = set(keys)
            for k in [k for k in self._cells if k not in live]:
                del self._cells[k]
        if changed is None or first:
            self._cells.clear()
            self._lines.clear()
        else:
            for key in changed:
                self._cells.pop(key, None)
                self._forget_lines(key)
        if first:
            for key in keys[:50]:  # auto widths from the first rows, before the first paint
                self.row_cells(key)
            self.fit_columns()
        self.refresh()
        self.sync_count += 1

    def sort(
        self, *columns: str, key: Callable[[Any], Any] | None = None, reverse: bool = False
    ) -> None:
        """Order the rows by the cells of ``columns`` (``key`` as in DataTable.sort)."""
        idx = [self.column_keys.index(c) for c in columns]

        def value(k: str) -> Any:
            cells = self.row_cells(k) or ()
            vals = tuple(cells[i] for i in idx)
            picked = vals[0] if len(vals) == 1 else vals
            return key(picked) if key is not None else picked

        self._set_keys(sorted(self._keys, key=value, reverse=reverse))
        self._lines.clear()
        self.refresh()

    def clear(self, columns: bool = False) -> None:
        self._cells.clear()
        self._set_keys([])
        self._lines.clear()
        self.refresh()

    def _forget_lines(self, key: str) -> None:
        self._lines.pop((key, True), None)
        self._lines.pop((key, False), None)

    # ---- cursor -------------------------------------------------------------------------

    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def cursor_key(self) -> str | None:
        """The key of the row under the cursor, or None for an empty table."""
        if not self._keys:
            return None
        return self._keys[self._cursor]

    def move_cursor(
        self,
        *,
        row: int | None = None,
        column: int | None = None,
        animate: bool = False,
        scroll: bool = True,
    ) -> None:
        if row is None or not self._keys:
            return
        row = max(0, min(row, len(self._keys) - 1))
        if row == self._cursor:
            if scroll:
                self._scroll_to_cursor()
            return
        old = self.cursor_key
        self._cursor = row
        if old is not None:
            self._forget_lines(old)
        self._forget_lines(self._keys[row])
        if scroll:
            self._scroll_to_cursor()
        self.refresh()
        self.post_message(self.RowHighlighted(self, row, RowKey(self._keys[row])))

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - HEADER)

    def _scroll_to_cursor(self) -> None:
        top = int(self.scroll_y)
        page = self._page()
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, force=True)
        elif self._cursor >= top + page:
            self.scroll_to(y=self._cursor - page + 1, animate=False, force=True)

    def action_cursor_up(self) -> None:
        self.move_cursor(row=self._cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self._cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(row=self._cursor - self._page())

    def action_page_down(self) -> None:
        self.move_cursor(row=self._cursor + self._page())

    def action_scroll_top(self) -> None:
        self.move_cursor(row=0)

    def action_scroll_bottom(self) -> None:
        self.move_cursor(row=len(self._keys) - 1)

    def action_select_cursor(self) -> None:
        if self._keys:
            self.post_message(
                self.RowSelected(self, self._cursor, RowKey(self._keys[self._cursor]))
            )

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < HEADER:
            return
        row = int(self.scroll_y) + offset.y - HEADER
        if not 0 <= row < len(self._keys):
            return
        if row == self._cursor:
            self.action_select_cursor()
        else:
            self.move_cursor(row=row)

    # ---- painting -----------------------------------------------------------------------

    def _update_virtual_size(self) -> None:
        pad = 2 * self.cell_padding
        width = sum(w + pad for w in self._shown_widths())
        self.virtual_size = Size(width, len(self._keys) + HEADER)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._keys) + HEADER

    def _row_strip(
        self, cells: Sequence[Cell], widths: list[int], width: int, style: Style, row: int
    ) -> Strip:
        """One row: each cell padded and cut to its column, painted as DataTable paints it (the
        row's style under the cell's own, the cursor's colour over it, the cell's position as
        meta: also what a click reads)."""
        pad = " " * self.cell_padding
        console = self.app.console
        post = Style.from_color(color=style.color) if row == self._cursor else Style.null()
        segments: list[Segment] = []
        for column, (i, w) in enumerate(zip(self._shown, widths, strict=True)):
            cell = cells[i]
            text = cell.copy() if isinstance(cell, Text) else Text(str(cell))
            rest = _fit(text, w)
            padded = Text(pad, end="")
            padded.append_text(text)
            padded.append(" " * rest + pad)
            pre = style + Style.from_meta({"row": row, "column": column})
            segments += [
                Segment(seg.text, pre + seg.style + post if seg.style else pre + post)
                for seg in padded.render(console)
                if seg.text != "\n"
            ]
        return Strip(segments).extend_cell_length(width, style)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        full = max(width + scroll_x, self.virtual_size.width)
        base = self.rich_style
        widths = self._shown_widths()
        if y < HEADER:
            style = base + self.get_component_rich_style("datatable--header")
            labels = [label for _, label, _ in self._column_spec]
            strip = self._row_strip(labels, widths, full, style, -1)
            return strip.crop(scroll_x, scroll_x + width)
        index = scroll_y + y - HEADER
        if index >= len(self._keys):
            return Strip([Segment(" " * width, base)], width)
        key = self._keys[index]
        is_cursor = index == self._cursor
        cached = self._lines.get((key, is_cursor))
        if cached is None:
            style = base
            if self.zebra_stripes:
                style += self.get_component_rich_style(
                    "datatable--even-row" if index % 2 == 0 else "datatable--odd-row"
                )
            if is_cursor:
                style += self.get_component_rich_style("datatable--cursor")
            cells = self.row_cells(key) or ()
            cached = self._row_strip(cells, widths, full, style, index)
            if len(self._lines) > 4096:
                self._lines.clear()
            self._lines[(key, is_cursor)] = cached
        return cached.crop(scroll_x, scroll_x + width)

    def refresh_row(self, key: str) -> None:
        """Paint row ``key`` again (its cells are made again if they came from a source)."""
        if self._source is not None:
            self._cells.pop(key, None)
        self._forget_lines(key)
        index = self._index.get(key)
        if index is not None:
            self.refresh(Region(0, index - int(self.scroll_y) + HEADER, self.size.width, 1))
