"""Modal dialogs: confirmation, progress of a long verb, and a message to read or copy."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, ProgressBar, Static


class ConfirmModal(ModalScreen[bool]):
    """Ask a yes/no question; dismisses with True for yes."""

    BINDINGS = [
        Binding("y", "answer(True)", "yes"),
        Binding("n,escape", "answer(False)", "no"),
    ]

    def __init__(self, title: str, question: str, yes: str = "Yes", danger: bool = False) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.question = question
        self.yes = yes
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield Static(self.question, id="question", markup=False)
            with Horizontal(id="buttons"):
                yield Button(
                    f"{self.yes} (y)", id="yes", variant="error" if self.danger else "primary"
                )
                yield Button("No (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no" if self.danger else "#yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class ProgressModal(ModalScreen[None]):
    """Shows the progress of a verb that runs in a worker; the worker closes it."""

    def __init__(self, title: str) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.messages: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield Static("", id="progress-message", markup=False)
            yield ProgressBar(total=None, show_eta=False, id="progress-bar")

    def report(self, message: str, fraction: float | None) -> None:
        """Show one progress step (call from the app's thread)."""
        self.messages.append(message)
        if not self.is_mounted:
            return
        self.query_one("#progress-message", Static).update(message)
        bar = self.query_one("#progress-bar", ProgressBar)
        if fraction is None:
            bar.update(total=None)
        else:
            bar.update(total=100, progress=max(0.0, min(1.0, fraction)) * 100)


class MessageModal(ModalScreen[None]):
    """A text to read (a command to copy, what cleanup removed); any key closes it."""

    BINDINGS = [Binding("escape,enter,q", "close", "close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield Static(self.text, id="message", markup=False)
            yield Button("Close (esc)", id="close")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
