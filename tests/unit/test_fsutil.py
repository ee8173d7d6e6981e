"""The one atomic write (awsac_agent.fsutil): whole or not at all, private temporaries, modes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from awsac_agent.fsutil import atomic_path, atomic_write, atomic_write_json


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "jobs.cfg"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_path(target, 0o644) as tmp:
        tmp.write_text("half")
        raise RuntimeError("the writer failed")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.cfg"]


def test_modes_parents_and_json(tmp_path: Path) -> None:
    secret = tmp_path / "state" / "sessions" / "rec.toml"
    atomic_write(secret, b"x = 1\n", 0o600, dir_mode=0o700)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret.parent.stat().st_mode) == 0o700
    info = tmp_path / "service.json"
    atomic_write_json(info, {"port": 1})
    assert json.loads(info.read_text()) == {"port": 1}
    assert stat.S_IMODE(info.stat().st_mode) == 0o644
