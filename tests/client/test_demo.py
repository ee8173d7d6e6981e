"""`awsac demo`: the paper's example from start to results on the local cloud."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .test_e2e import PAPER_OBJECTS, tagged


@pytest.mark.slow
@pytest.mark.e2e
def test_demo_runs_the_paper_example(cli, tmp_path: Path, boto3_client) -> None:
    rc, out, err = cli("demo", "--outdir", str(tmp_path))
    assert rc == 0, out + err
    sid = re.search(r"session id: (\S+)", out).group(1)
    assert sorted(p.name for p in (tmp_path / f"session-{sid}").iterdir()) == PAPER_OBJECTS
    table = out[out.index("job  instance") :].splitlines()[1:5]
    assert [row.split()[3] for row in table] == ["finished"] * 4
    assert [row.split()[2] for row in table] == ["0", "0", "1", "1"]
    assert "left behind: 0 running instance(s), 0 volume(s)" in out
    assert "time from start to results:" in out
    assert f"awsac cleanup {sid} --yes" in out
    inst, vols, objs = tagged(boto3_client, sid)
    assert inst == [] and vols == [] and len(objs) >= 11  # the session stays for the TUI
    rc, _, _ = cli("cleanup", sid, "--yes")
    assert rc == 0 and tagged(boto3_client, sid) == ([], [], [])
