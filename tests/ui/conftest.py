"""Fixtures for the TUI tests: the fixed backend and an app factory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from awsac_tui.testing.fixed_backend import FixedBackend  # noqa: E402
from awsac_tui.ui.app import AwsacApp  # noqa: E402


@pytest.fixture
def backend() -> FixedBackend:
    return FixedBackend.demo()


@pytest.fixture
def make_app(backend: FixedBackend, tmp_path: Path):
    def make(**kwargs) -> AwsacApp:
        kwargs.setdefault("results_dir", tmp_path)
        return AwsacApp(backend, **kwargs)

    return make
