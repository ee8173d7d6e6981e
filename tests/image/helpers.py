"""Shared helpers of the image tests: repository paths, and need_tool (from tests/needs.py)."""

from __future__ import annotations

from pathlib import Path

from needs import need_tool  # noqa: F401 - the image tests import it from here

ROOT = Path(__file__).resolve().parents[2]
AMI = ROOT / "ami"
IAM = AMI / "iam"
