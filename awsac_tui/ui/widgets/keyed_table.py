"""A DataTable keyed by cloud id / job number that applies snapshot diffs in place.

``sync`` changes only the cells that changed (``update_cell(update_width=False)``), adds new
rows and removes gone ones; it never clears, so the cursor and the scroll position are kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

Cell = str | Text


class KeyedTable(DataTable):
    """DataTable with stable row keys and diff updates.

    ``drop`` names columns, least useful first, to hide while the table is wider than its
    widget (no horizontal scrollbar eating a row on a narrow terminal); they come back when
    there is room. Hidden columns keep their values (``row_cells`` returns every column).
    ``flex`` names a column whose width (its minimum) grows to fill the room the others leave.
    """

    def __init__(
        self,
        columns: Sequence[tuple[str, str, int | None]],
        *,
        drop: Sequence[str] = (),
        flex: str | None = None,
        **kwargs,
    ) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", False)
        super().__init__(**kwargs)
        self._column_spec = list(columns)
        self._drop = [k for k in drop if k in {c[0] for c in columns}]
        self._shown = list(range(len(self._column_spec)))
        self._flex = flex
        self._flex_width: int | None = None
        self._cells: dict[str, tuple[Cell, ...]] = {}
        self.sync_count = 0
        """How many syncs ran (tests use it to wait for a tick)."""

    def on_mount(self) -> None:
        for i in self._shown:
            key, label, width = self._column_spec[i]
            self.add_column(label, key=key, width=width)

    def on_resize(self) -> None:
        self.fit_columns()

    @property
    def column_keys(self) -> list[str]:
        """The keys of every column, shown or hidden, in order."""
        return [key for key, _, _ in self._column_spec]

    @property
    def shown_keys(self) -> list[str]:
        """The keys of the columns shown now."""
        return [self._column_spec[i][0] for i in self._shown]

    def row_cells(self, key: str) -> tuple[Cell, ...] | None:
        """The cells last synced for row ``key`` (every column, shown or hidden)."""
        return self._cells.get(key)

    def _width(self, i: int) -> int:
        key, label, width = self._column_spec[i]
        if width is not None:
            return width
        cells = (row[i] for row in self._cells.values())
        return max([cell_len(label), *(cell_len(str(c)) for c in cells)])

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
            self._rebuild(shown)

    def _rebuild(self, shown: list[int]) -> None:
        order = [row.key.value for row in self.ordered_rows]
        cursor = self.cursor_key
        self.clear(columns=True)
        self._shown = shown
        for i in shown:
            key, label, width = self._column_spec[i]
            if key == self._flex and self._flex_width is not None:
                width = self._flex_width
            self.add_column(label, key=key, width=width)
        for key in order:
            cells = self._cells[key]
            self.add_row(*(cells[i] for i in shown), key=key)
        if cursor is not None and cursor in self._cells:
            self.move_cursor(row=self.get_row_index(cursor), animate=False)

    def sync(self, rows: Mapping[str, Sequence[Cell]]) -> tuple[int, int, int]:
        """Make the table show ``rows`` (key -> cells); returns (added, changed cells, removed).

        Call inside ``app.batch_update()`` so the whole diff paints once.
        """
        added = changed = removed = 0
        for key in [k for k in self._cells if k not in rows]:
            self.remove_row(key)
            del self._cells[key]
            removed += 1
        columns = self.column_keys
        shown = set(self._shown)
        for key, cells in rows.items():
            cells = tuple(cells)
            old = self._cells.get(key)
            if old is None:
                self.add_row(*(cells[i] for i in self._shown), key=key)
                added += 1
            elif old != cells:
                for i, (before, after) in enumerate(zip(old, cells, strict=True)):
                    if before != after and i in shown:
                        self.update_cell(key, columns[i], after, update_width=False)
                        changed += 1
            self._cells[key] = cells
        if added:
            self.fit_columns()
        self.sync_count += 1
        return added, changed, removed

    @property
    def cursor_key(self) -> str | None:
        """The key of the row under the cursor, or None for an empty table."""
        if self.row_count == 0:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except CellDoesNotExist:
            return None
        return row_key.value
