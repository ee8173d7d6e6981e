"""Shared helpers of the image tests: repository paths and "skip when a tool is absent"."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AMI = ROOT / "ami"
IAM = AMI / "iam"


def need_tool(name: str) -> str:
    """The path of tool ``name``, or skip the test saying how to get it."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install -y {name}; .ci/run installs it)")
    return path
