"""Saving a composed session over a user's files keeps their comments (issue 15)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from awsac_agent.jobscfg import JobLine, format_jobs_cfg_keeping, parse_jobs_cfg

from awsac_tui import spec as specmod

EVENTGEN = Path(__file__).resolve().parents[2] / "examples" / "eventgen"


def test_jobs_cfg_keeps_comments_and_gives_line_numbers() -> None:
    old = "# mine\n\nsnap-00000000;a.sh;2   # first\n# between\nsnap-00000000;b.sh;1\n-;c.sh;1\n"
    lines = parse_jobs_cfg(old)
    new = [
        lines[0],
        dataclasses.replace(lines[1], snapshot="snap-1234abcd"),
        JobLine(None, "d.sh", 3),
    ]
    text, numbers = format_jobs_cfg_keeping(old, new)
    assert text.splitlines() == [
        "# mine",
        "",
        "snap-00000000;a.sh;2   # first",  # unchanged: spelled as the user wrote it
        "# between",
        "snap-1234abcd;b.sh;1",
        "-;d.sh;3",
    ]
    assert numbers == [3, 5, 6]
    assert [jl.lineno for jl in parse_jobs_cfg(text)] == numbers
    fresh, numbers = format_jobs_cfg_keeping("", new, header="written by awsac")
    assert numbers == [2, 3, 4] and fresh.startswith("# written by awsac\n")


def test_session_toml_round_trip_keeps_comments_and_unwritten_defaults() -> None:
    old = (EVENTGEN / "session.toml").read_text()
    spec = specmod.parse_spec_toml(old)
    changed = dataclasses.replace(
        spec, image_id="ami-0a75ac10ca1000000", image_owner=None, n_jobs=5, key_name="lab"
    )
    text = specmod.update_spec_text(old, changed)
    assert specmod.parse_spec_toml(text) == changed
    comments = [ln for ln in old.splitlines() if ln.startswith("#")]
    assert [ln for ln in text.splitlines() if ln.startswith("#")] == comments
    assert "image_owner" not in text and 'key_name = "lab"' in text
    assert "spot" not in text and "max_session_hours" not in text  # defaults stay unwritten
    assert "[cloud]\nlocal = true" in text
