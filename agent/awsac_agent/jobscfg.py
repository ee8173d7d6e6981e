"""jobs.cfg: one line per job group, ``snapshotID;script;count``; job numbers are 1..N in file order.

``#`` starts a comment, blank lines are ignored, and a snapshot of ``-`` (or empty) means the
job needs no software volume.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from .errors import FormatError, join_problems
from .fsutil import atomic_write

SNAPSHOT_RE = re.compile(r"^snap-[0-9a-f]{8,17}$")
SCRIPT_RE = re.compile(r"^[A-Za-z0-9._+@%=,/-]+$")
NO_SNAPSHOT = "-"


@dataclass(frozen=True)
class JobLine:
    """One line of jobs.cfg: ``count`` jobs running ``script`` with ``snapshot`` (None: no volume)."""

    snapshot: Optional[str]
    script: str
    count: int
    lineno: int = 0


@dataclass(frozen=True)
class Job:
    """One job of a session."""

    jobnr: int
    snapshot: Optional[str]
    script: str


def check_script_path(script: str) -> Optional[str]:
    """Why ``script`` is not an acceptable job script path, or None when it is."""
    if not script:
        return "the script is empty"
    if not SCRIPT_RE.match(script):
        return (
            f"script {script!r} has characters that are not allowed "
            "(use letters, digits and ._+@%=,/- only)"
        )
    p = PurePosixPath(script)
    if p.is_absolute() or ".." in p.parts:
        return f"script {script!r} points outside the session archive (use a path relative to the job directory)"
    return None


def parse_jobs_cfg(text: str, source: str = "jobs.cfg") -> List[JobLine]:
    """Parse jobs.cfg text; every problem found is reported at once as a FormatError."""
    lines: List[JobLine] = []
    problems: List[str] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source}, line {lineno}"
        fields = [f.strip() for f in line.split(";")]
        if len(fields) != 3:
            problems.append(
                f"{where}: expected 3 fields 'snapshotID;script;count', found {len(fields)} in {line!r}"
            )
            continue
        snap, script, count_s = fields
        if snap in ("", NO_SNAPSHOT):
            snapshot = None
        elif SNAPSHOT_RE.match(snap):
            snapshot = snap
        else:
            problems.append(
                f"{where}: {snap!r} is not a snapshot id (expected snap-<hex>, or '-' for no snapshot)"
            )
            continue
        why = check_script_path(script)
        if why:
            problems.append(f"{where}: {why}")
            continue
        try:
            count = int(count_s)
        except ValueError:
            count = 0
        if count < 1 or not count_s.isdigit():
            problems.append(f"{where}: count {count_s!r} must be a positive integer (e.g. 2)")
            continue
        lines.append(JobLine(snapshot, script, count, lineno))
    if not lines and not problems:
        problems.append(f"{source}: no job lines (add a line like 'snap-0123abcd;myjob.sh;2')")
    if problems:
        raise FormatError(join_problems(problems), problems)
    return lines


def read_jobs_cfg(path: Union[str, Path]) -> List[JobLine]:
    """Read and parse a jobs.cfg file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")  # a BOM (Windows editors) is not content
    except FileNotFoundError:
        raise FormatError(
            f"{p}: file not found (create it with lines 'snapshotID;script;count')"
        ) from None
    except UnicodeDecodeError:
        raise FormatError(f"{p}: not UTF-8 text (save it as UTF-8)") from None
    return parse_jobs_cfg(text, str(p))


def format_jobs_cfg(lines: Iterable[JobLine], header: str = "") -> str:
    """jobs.cfg text for these lines (the inverse of parse_jobs_cfg)."""
    out = [f"# {h}" for h in header.splitlines()] if header else []
    for jl in lines:
        out.append(f"{jl.snapshot or NO_SNAPSHOT};{jl.script};{jl.count}")
    return "\n".join(out) + "\n"


def format_jobs_cfg_keeping(
    old_text: str, lines: Sequence[JobLine], header: str = ""
) -> Tuple[str, List[int]]:
    """jobs.cfg text for ``lines`` that keeps the comments and blank lines of ``old_text``.

    The job lines of ``old_text`` are replaced in order by ``lines`` (a line that did not change
    keeps its spelling and trailing comment); surplus old job lines go, extra new ones are
    appended. Returns the text and the 1-based line number of each of ``lines`` in it.
    """
    if not old_text.strip():
        text = format_jobs_cfg(lines, header)
        first = len(header.splitlines()) + 1 if header else 1
        return text, [first + k for k in range(len(lines))]
    out: List[str] = []
    numbers: List[int] = []
    pending = list(lines)
    for raw in old_text.splitlines():
        body = raw.split("#", 1)[0].strip()
        if not body:
            out.append(raw)
            continue
        if not pending:
            continue  # a job line the user deleted
        jl = pending.pop(0)
        new = f"{jl.snapshot or NO_SNAPSHOT};{jl.script};{jl.count}"
        fields = [f.strip() for f in body.split(";")]
        same = fields == [jl.snapshot or NO_SNAPSHOT, jl.script, str(jl.count)] or (
            len(fields) == 3
            and fields[0] == ""
            and jl.snapshot is None
            and fields[1:] == [jl.script, str(jl.count)]
        )
        out.append(raw if same else new)
        numbers.append(len(out))
    for jl in pending:
        out.append(f"{jl.snapshot or NO_SNAPSHOT};{jl.script};{jl.count}")
        numbers.append(len(out))
    return "\n".join(out) + "\n", numbers


def write_jobs_cfg(path: Union[str, Path], lines: Iterable[JobLine], header: str = "") -> None:
    """Write jobs.cfg atomically."""
    atomic_write(Path(path), format_jobs_cfg(lines, header).encode("utf-8"), 0o644)


def expand_jobs(lines: Sequence[JobLine]) -> List[Job]:
    """Every job of the session, numbered 1..N in file order."""
    jobs: List[Job] = []
    for jl in lines:
        for _ in range(jl.count):
            jobs.append(Job(len(jobs) + 1, jl.snapshot, jl.script))
    return jobs


def n_jobs(lines: Sequence[JobLine]) -> int:
    """Total number of jobs."""
    return sum(jl.count for jl in lines)


def check_scripts_exist(
    lines: Sequence[JobLine], available: Iterable[str], source: str = "jobs.cfg"
) -> List[str]:
    """Problems for scripts named in jobs.cfg that are not among ``available`` paths."""
    have = {str(PurePosixPath(a)) for a in available}
    problems = []
    for jl in lines:
        if str(PurePosixPath(jl.script)) not in have:
            problems.append(
                f"{source}, line {jl.lineno}: script {jl.script!r} is not in the session archive "
                "(add it to the job directory or fix the name)"
            )
    return problems


def snapshots(lines: Sequence[JobLine]) -> List[str]:
    """Distinct snapshot ids, in first-use order."""
    seen: List[str] = []
    for jl in lines:
        if jl.snapshot and jl.snapshot not in seen:
            seen.append(jl.snapshot)
    return seen


def group_by_snapshot(jobs: Sequence[Job]) -> List[Tuple[Optional[str], List[Job]]]:
    """Jobs grouped by snapshot, in first-use order."""
    groups: List[Tuple[Optional[str], List[Job]]] = []
    for job in jobs:
        for snap, js in groups:
            if snap == job.snapshot:
                js.append(job)
                break
        else:
            groups.append((job.snapshot, [job]))
    return groups
