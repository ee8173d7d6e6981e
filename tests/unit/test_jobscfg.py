"""jobs.cfg: parse, write, expand; every bad line gives its specific message."""

from __future__ import annotations

import pytest
from awsac_agent.errors import FormatError
from awsac_agent.jobscfg import (
    Job,
    JobLine,
    check_scripts_exist,
    expand_jobs,
    format_jobs_cfg,
    group_by_snapshot,
    n_jobs,
    parse_jobs_cfg,
    read_jobs_cfg,
    snapshots,
    write_jobs_cfg,
)

PAPER = "snap-9fd433f6;gen_30.sh;2\nsnap-9fd433f6;gen_1000.sh;2\n"


def test_paper_example_parses() -> None:
    lines = parse_jobs_cfg(PAPER)
    assert lines == [
        JobLine("snap-9fd433f6", "gen_30.sh", 2, 1),
        JobLine("snap-9fd433f6", "gen_1000.sh", 2, 2),
    ]
    assert n_jobs(lines) == 4
    assert [j.jobnr for j in expand_jobs(lines)] == [1, 2, 3, 4]
    assert [j.script for j in expand_jobs(lines)] == ["gen_30.sh"] * 2 + ["gen_1000.sh"] * 2


def test_comments_blank_lines_spaces_and_no_snapshot() -> None:
    text = "# header\n\n  - ; prep.sh ; 1  # trailing comment\n;sub/run.sh;3\n"
    lines = parse_jobs_cfg(text)
    assert lines == [JobLine(None, "prep.sh", 1, 3), JobLine(None, "sub/run.sh", 3, 4)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "snap-9fd433f6;a.sh",
            "jobs.cfg, line 1: expected 3 fields 'snapshotID;script;count', found 2",
        ),
        ("snap-9fd433f6;a.sh;1;x", "found 4"),
        (
            "snap1;a.sh;1",
            "jobs.cfg, line 1: 'snap1' is not a snapshot id (expected snap-<hex>, or '-' for no snapshot)",
        ),
        ("snap-9fd433f6;a.sh;0", "jobs.cfg, line 1: count '0' must be a positive integer (e.g. 2)"),
        ("snap-9fd433f6;a.sh;-2", "count '-2' must be a positive integer"),
        ("snap-9fd433f6;a.sh;two", "count 'two' must be a positive integer"),
        ("snap-9fd433f6;;1", "jobs.cfg, line 1: the script is empty"),
        ("snap-9fd433f6;a b.sh;1", "script 'a b.sh' has characters that are not allowed"),
        ("snap-9fd433f6;/bin/a.sh;1", "script '/bin/a.sh' points outside the session archive"),
        ("snap-9fd433f6;../a.sh;1", "script '../a.sh' points outside the session archive"),
        (
            "# only a comment\n\n",
            "jobs.cfg: no job lines (add a line like 'snap-0123abcd;myjob.sh;2')",
        ),
    ],
)
def test_bad_lines(text: str, message: str) -> None:
    with pytest.raises(FormatError) as exc:
        parse_jobs_cfg(text)
    assert message in str(exc.value)


def test_all_problems_reported_at_once_with_line_numbers() -> None:
    text = "snap-9fd433f6;a.sh;1\nbad\n# c\nsnap-9fd433f6;b.sh;x\n"
    with pytest.raises(FormatError) as exc:
        parse_jobs_cfg(text, "my/jobs.cfg")
    assert len(exc.value.problems) == 2
    assert exc.value.problems[0].startswith("my/jobs.cfg, line 2: expected 3 fields")
    assert exc.value.problems[1].startswith("my/jobs.cfg, line 4: count 'x'")
    assert str(exc.value).startswith("2 problems:")


def test_write_read_round_trip(tmp_path) -> None:
    lines = [JobLine("snap-0123abcd", "a.sh", 3), JobLine(None, "b.sh", 1)]
    path = tmp_path / "jobs.cfg"
    write_jobs_cfg(path, lines, header="made by a test")
    assert path.read_text().startswith("# made by a test\n")
    again = read_jobs_cfg(path)
    assert [(j.snapshot, j.script, j.count) for j in again] == [
        ("snap-0123abcd", "a.sh", 3),
        (None, "b.sh", 1),
    ]
    assert format_jobs_cfg(again) == "snap-0123abcd;a.sh;3\n-;b.sh;1\n"


def test_read_missing_file(tmp_path) -> None:
    with pytest.raises(FormatError, match="file not found"):
        read_jobs_cfg(tmp_path / "jobs.cfg")


def test_read_not_utf8(tmp_path) -> None:
    path = tmp_path / "jobs.cfg"
    path.write_bytes(b"\xff\xfe;a;1\n")
    with pytest.raises(FormatError, match="not UTF-8 text"):
        read_jobs_cfg(path)


def test_scripts_exist_and_snapshot_groups() -> None:
    lines = parse_jobs_cfg("snap-0000000a;a.sh;2\nsnap-0000000b;b.sh;1\nsnap-0000000a;c.sh;1\n")
    assert snapshots(lines) == ["snap-0000000a", "snap-0000000b"]
    problems = check_scripts_exist(lines, ["a.sh", "./b.sh"])
    assert problems == [
        "jobs.cfg, line 3: script 'c.sh' is not in the session archive "
        "(add it to the job directory or fix the name)"
    ]
    groups = group_by_snapshot(expand_jobs(lines))
    assert [(s, [j.jobnr for j in js]) for s, js in groups] == [
        ("snap-0000000a", [1, 2, 4]),
        ("snap-0000000b", [3]),
    ]
    assert expand_jobs(lines)[3] == Job(4, "snap-0000000a", "c.sh")


def test_read_with_byte_order_mark(tmp_path) -> None:
    path = tmp_path / "jobs.cfg"
    path.write_bytes("\ufeffsnap-0123abcd;a.sh;1\r\n-;b.sh;2\r\n".encode())
    assert [(j.snapshot, j.script, j.count) for j in read_jobs_cfg(path)] == [
        ("snap-0123abcd", "a.sh", 1),
        (None, "b.sh", 2),
    ]
