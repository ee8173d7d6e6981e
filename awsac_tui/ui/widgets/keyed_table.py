"""A DataTable keyed by cloud id / job number that applies snapshot diffs in place.

``sync`` changes only the cells that changed (``update_cell(update_width=False)``), adds new
rows and removes gone ones; it never clears, so the cursor and the scroll position are kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

Cell = str | Text


class KeyedTable(DataTable):
    """DataTable with stable row keys and diff updates."""

    def __init__(self, columns: Sequence[tuple[str, str, int | None]], **kwargs) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", False)
        super().__init__(**kwargs)
        self._column_spec = list(columns)
        self._cells: dict[str, tuple[Cell, ...]] = {}
        self.sync_count = 0
        """How many syncs ran (tests use it to wait for a tick)."""

    def on_mount(self) -> None:
        for key, label, width in self._column_spec:
            self.add_column(label, key=key, width=width)

    @property
    def column_keys(self) -> list[str]:
        return [key for key, _, _ in self._column_spec]

    def row_cells(self, key: str) -> tuple[Cell, ...] | None:
        """The cells last synced for row ``key``."""
        return self._cells.get(key)

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
        for key, cells in rows.items():
            cells = tuple(cells)
            old = self._cells.get(key)
            if old is None:
                self.add_row(*cells, key=key)
                added += 1
            elif old != cells:
                for column, before, after in zip(columns, old, cells, strict=True):
                    if before != after:
                        self.update_cell(key, column, after, update_width=False)
                        changed += 1
            self._cells[key] = cells
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
