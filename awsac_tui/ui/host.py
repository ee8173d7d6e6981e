"""What a screen may ask of the app it runs in: a Protocol below both the app and the screens,
so that screens name the app's verbs without importing the app (which imports the screens)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from awsac_tui.ui.backend import Backend

# Actions that change the cloud; a read-only app refuses them (k9s' --readonly).
DANGEROUS_ACTIONS = frozenset({"start", "kill", "terminate", "cleanup", "retry", "auto_retry"})


class AwsacHost(Protocol):
    """The app's side of a screen: its backend, its settings and the verbs several screens share."""

    backend: Backend
    read_only: bool
    auto_retry: bool
    in_foreground: bool
    results_dir: Path

    def scale_interval(self, seconds: float) -> float: ...

    def open_session(self, session_id: str) -> None: ...

    def report_error(self, what: str, exc: BaseException) -> None: ...

    def get_results(self, session_id: str) -> object: ...

    def cleanup_session(
        self, session_id: str, after: Callable[[], None] | None = None
    ) -> object: ...

    def run_ssh(self, session_id: str, instance_id: str) -> object: ...
