"""Skips for what a machine may lack (a system tool, root, an old Python), outside CI only.

CI (``CI=true``) provides all of it (.ci/run installs the tools and runs as root), so there a
missing one fails the test instead of skipping it: a skip never hides a broken CI machine.
tests/ is on sys.path (tests/conftest.py): ``from needs import need, need_tool, needs``.
"""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    """Whether this is a CI run (.ci/run is started with CI=true)."""
    return os.environ.get("CI", "").lower() == "true"


def need(ok: object, why: str) -> None:
    """Skip the test (fail it under CI) unless ``ok``; ``why`` says what is missing."""
    if ok:
        return
    if in_ci():
        pytest.fail(f"{why} (CI=true: .ci/run must provide it)")
    pytest.skip(why)


def need_tool(name: str, package: str | None = None) -> str:
    """The path of tool ``name``; skips (fails under CI) saying how to install it."""
    path = shutil.which(name)
    need(path, f"{name} is not installed (apt-get install -y {package or name}; .ci/run does)")
    return path or ""


def needs(ok: object, why: str) -> pytest.MarkDecorator:
    """A mark: skip unless ``ok``, but never under CI (there the test runs, and fails)."""
    return pytest.mark.skipif(not ok and not in_ci(), reason=why)
