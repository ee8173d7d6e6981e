"""Fixtures for the client's end-to-end tests: a job directory of the paper's example on the local cloud."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from fast_autorun import fast_autorun

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "eventgen"


def write_example(
    dest: Path,
    info: Any,
    snapshot: str,
    *,
    store: str = "s3",
    jobs: str | None = None,
    fast: bool = False,
) -> Path:
    """A copy of examples/eventgen (no release/) with the local image and ``snapshot`` filled in.

    ``fast``: the job dir ships the tests' own session autorun (fast_autorun.py), whose worker
    polls for kills every 0.5 s instead of 5 s: for tests of a kill, not of the shipped default."""
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("release"))
    if fast:
        (dest / "awsac_all_instances_autorun.sh").write_text(fast_autorun())
    cfg = dest / "jobs.cfg"
    cfg.write_text(jobs or cfg.read_text().replace("snap-00000000", snapshot))
    toml = dest / "session.toml"
    text = toml.read_text().replace("ami-00000000", info.image_id)
    text = text.replace('status_store = "simpledb"', f'status_store = "{store}"')
    if jobs is not None:
        text = "\n".join(line for line in text.splitlines() if not line.startswith("n_jobs"))
    toml.write_text(text + "\n")
    ini = dest / "session.ini"
    ini.write_text(ini.read_text().replace("ami-00000000", info.image_id))
    return dest


@pytest.fixture
def example_dir(tmp_path: Path, local_cloud: Any, release_snapshot: str) -> Path:
    return write_example(tmp_path / "eventgen", local_cloud, release_snapshot)
