"""The session archive: build a ``.tar.bz2`` from a job directory (adding the agent's session-side
files), list and check one, and extract one safely on the instance (stdlib only, Python 3.9+).
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import tempfile
import zipapp
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator, List, Optional, Tuple, Union

from .errors import ArchiveError, FormatError, join_problems

SESSION_SIDE_FILES = ("awsac_all_instances_autorun.sh", "awsac-processjobs.pyz")
AUTORUN_SH, PROCESSJOBS_PYZ = SESSION_SIDE_FILES
PYZ_ENTRY = "awsac_agent.processjobs:main"
PYZ_INTERPRETER = "/usr/bin/env python3"
ARCHIVE_SUFFIX = ".tar.bz2"
JOBS_CFG = "jobs.cfg"

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class ArchiveReport:
    """What build_archive wrote: the archive, its size, its members and the agent files it added."""

    path: Path
    size_bytes: int
    files: List[str] = field(default_factory=list)
    added_agent_files: List[str] = field(default_factory=list)


def package_dir() -> Path:
    """The directory of the installed awsac_agent package."""
    return Path(__file__).resolve().parent


def session_file(name: str) -> Path:
    """A session-side file shipped in ``awsac_agent/session_files/`` (ArchiveError if missing)."""
    path = package_dir() / "session_files" / name
    if not path.is_file():
        raise ArchiveError(
            f"{path}: the agent's session-side file {name} is missing from this installation "
            f"(reinstall awsac, or put your own {name} into the job directory)"
        )
    return path


# ---------------------------------------------------------------- the worker zipapp


def build_processjobs_pyz(dest: PathLike) -> Path:
    """Build ``awsac-processjobs.pyz``: a zipapp of the awsac_agent package (.py files and
    session_files only), entry point ``awsac_agent.processjobs:main``."""
    dest = Path(dest)
    src = package_dir()
    with tempfile.TemporaryDirectory(prefix="awsac-pyz-") as tmp:
        root = Path(tmp) / "app"
        pkg = root / "awsac_agent"
        for path in sorted(src.rglob("*")):
            rel = path.relative_to(src)
            if "__pycache__" in rel.parts or not path.is_file():
                continue
            if path.suffix == ".py" or rel.parts[0] == "session_files":
                target = pkg / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp_dest = dest.with_name(dest.name + ".tmp")
        zipapp.create_archive(root, tmp_dest, interpreter=PYZ_INTERPRETER, main=PYZ_ENTRY)
        os.replace(tmp_dest, dest)
    dest.chmod(0o755)
    return dest


# ---------------------------------------------------------------- building


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Owner-free member (the instance's user owns what it extracts)."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _walk(job_dir: Path) -> Iterator[Path]:
    """Every entry under ``job_dir`` in a fixed order (sorted, parents before children)."""
    for dirpath, dirnames, filenames in os.walk(job_dir):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            yield base / name


def _plan_members(job_dir: Path, out_path: Path) -> List[Tuple[Path, str, Optional[str]]]:
    """(path, member name, symlink target or None) for every entry, or ArchiveError."""
    root = job_dir.resolve()
    out_real = out_path.resolve()
    members: List[Tuple[Path, str, Optional[str]]] = []
    problems: List[str] = []
    for path in _walk(job_dir):
        rel = path.relative_to(job_dir).as_posix()
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            target = Path(os.path.realpath(path))
            if not target.exists():
                problems.append(
                    f"{path}: symlink to {os.readlink(path)} points nowhere "
                    "(remove the link or create its target)"
                )
            elif target != root and root not in target.parents:
                problems.append(
                    f"{path}: symlink points outside the job directory, to {target} "
                    "(copy the file into the job directory instead of linking it)"
                )
            else:
                rel_target = os.path.relpath(target, (root / rel).parent)
                members.append((path, rel, Path(rel_target).as_posix()))
            continue
        if stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
            if path.resolve() == out_real:
                problems.append(
                    f"{path}: the archive being written lies inside the job directory "
                    "(write it somewhere outside the job directory)"
                )
                continue
            members.append((path, rel, None))
            continue
        problems.append(
            f"{path}: is a special file (device, fifo or socket) that cannot go into a "
            "session archive (remove it from the job directory)"
        )
    if problems:
        raise ArchiveError(join_problems(problems))
    return members


def _check_jobs_cfg(job_dir: Path, jobs_cfg_name: str, names: List[str]) -> None:
    """jobs.cfg exists, parses, and names scripts that are in the directory."""
    from .jobscfg import check_scripts_exist, read_jobs_cfg

    path = job_dir / jobs_cfg_name
    if not path.is_file():
        raise ArchiveError(
            f"{job_dir}: no {jobs_cfg_name} in the job directory "
            "(add one with lines 'snapshotID;script;count')"
        )
    lines = read_jobs_cfg(path)
    problems = check_scripts_exist(lines, names, str(path))
    if problems:
        raise FormatError(join_problems(problems), problems)


def _atomic_tar(out_path: Path, fill: Callable[[tarfile.TarFile], None]) -> None:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(out_path.parent), prefix=f".{out_path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:bz2", format=tarfile.PAX_FORMAT) as tar:
            fill(tar)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o755) -> None:
    info = _normalise(tarfile.TarInfo(name))
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def _agent_file_bytes(name: str) -> bytes:
    if name == PROCESSJOBS_PYZ:
        with tempfile.TemporaryDirectory(prefix="awsac-pyz-") as tmp:
            return build_processjobs_pyz(Path(tmp) / PROCESSJOBS_PYZ).read_bytes()
    return session_file(name).read_bytes()


def _check_out_path(out_path: Path) -> None:
    if not out_path.name.endswith(ARCHIVE_SUFFIX):
        raise ArchiveError(
            f"{out_path}: a session archive must be a .tar.bz2 file (rename it to end in .tar.bz2)"
        )


def build_archive(
    job_dir: PathLike, out_path: PathLike, *, jobs_cfg_name: str = JOBS_CFG
) -> ArchiveReport:
    """Write the session archive of ``job_dir`` to ``out_path`` (a .tar.bz2).

    The agent's session-side files are added unless the directory has its own. jobs.cfg must be
    at the top and name scripts that exist (a ``jobs_cfg_name`` other than jobs.cfg is stored as
    jobs.cfg). Symlinks must stay inside the directory; nothing is skipped silently.
    """
    job_dir = Path(job_dir)
    out_path = Path(out_path)
    _check_out_path(out_path)
    if not job_dir.is_dir():
        raise ArchiveError(
            f"{job_dir}: not a directory (give the directory with your job scripts and jobs.cfg)"
        )
    planned = _plan_members(job_dir, out_path)
    names = [rel for _, rel, _ in planned]
    _check_jobs_cfg(job_dir, jobs_cfg_name, names)
    if jobs_cfg_name != JOBS_CFG and JOBS_CFG in names:
        raise ArchiveError(
            f"{job_dir}: has both {jobs_cfg_name} and {JOBS_CFG}; the archive carries one jobs.cfg "
            f"(remove {JOBS_CFG} or use it directly)"
        )
    missing = [n for n in SESSION_SIDE_FILES if n not in names]
    agent_data = [(n, _agent_file_bytes(n)) for n in missing]
    files: List[str] = []

    def fill(tar: tarfile.TarFile) -> None:
        for path, rel, link in planned:
            arcname = JOBS_CFG if rel == jobs_cfg_name else rel
            info = _normalise(tar.gettarinfo(str(path), arcname))
            if link is not None:
                info.linkname = link
                tar.addfile(info)
            elif info.isfile():
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
            files.append(arcname)
        for name, data in agent_data:
            _add_bytes(tar, name, data)
            files.append(name)

    _atomic_tar(out_path, fill)
    return ArchiveReport(out_path, out_path.stat().st_size, files, list(missing))


def add_agent_files(archive_in: PathLike, archive_out: PathLike) -> List[str]:
    """Copy a prebuilt archive, adding the session-side files it lacks; the names added."""
    archive_in, archive_out = Path(archive_in), Path(archive_out)
    _check_out_path(archive_out)
    names = {n[2:] if n.startswith("./") else n for n in check_archive(archive_in)}
    missing = [n for n in SESSION_SIDE_FILES if n not in names]
    agent_data = [(n, _agent_file_bytes(n)) for n in missing]
    src_bytes = archive_in.read_bytes()  # archive_in may be archive_out

    def fill(tar: tarfile.TarFile) -> None:
        with tarfile.open(fileobj=io.BytesIO(src_bytes), mode="r:bz2") as src:
            for info in src:
                tar.addfile(info, src.extractfile(info) if info.isfile() else None)
        for name, data in agent_data:
            _add_bytes(tar, name, data)

    _atomic_tar(archive_out, fill)
    return missing


# ---------------------------------------------------------------- reading


def _open(path: Path) -> tarfile.TarFile:
    if not path.name.endswith(ARCHIVE_SUFFIX):
        raise ArchiveError(
            f"{path}: a session archive must be a .tar.bz2 file (create it with "
            "'tar cjf NAME.tar.bz2 ...' or let awsac build it from the job directory)"
        )
    if not path.is_file():
        raise ArchiveError(f"{path}: archive not found (check the path)")
    try:
        return tarfile.open(str(path), "r:bz2")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveError(
            f"{path}: not a readable .tar.bz2 archive ({exc}); rebuild it with 'tar cjf'"
        ) from None


def list_archive(path: PathLike) -> List[str]:
    """Member names of a session archive, in archive order."""
    path = Path(path)
    with _open(path) as tar:
        try:
            return tar.getnames()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ArchiveError(
                f"{path}: damaged .tar.bz2 archive ({exc}); rebuild it with 'tar cjf'"
            ) from None


def check_archive(path: PathLike) -> List[str]:
    """Read the whole archive (every member's data); its member names, or ArchiveError.

    A member the instance would refuse to extract (absolute, ``..``, link out) is an error here
    already, so such an archive is never uploaded.
    """
    path = Path(path)
    with _open(path) as tar:
        try:
            names = []
            for info in tar:
                why = unsafe_member(info)
                if why:
                    raise ArchiveError(
                        f"{path}: {why}; an instance would refuse to extract it (rebuild the "
                        "archive from the job directory with relative paths and no links out)"
                    )
                names.append(info.name)
                if info.isfile():
                    fh = tar.extractfile(info)
                    if fh is not None:
                        while fh.read(1 << 20):
                            pass
            return names
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ArchiveError(
                f"{path}: damaged .tar.bz2 archive ({exc}); rebuild it with 'tar cjf'"
            ) from None


def read_member(path: PathLike, name: str) -> Optional[bytes]:
    """The content of regular-file member ``name`` (or ``./name``), or None if there is none."""
    path = Path(path)
    with _open(path) as tar:
        try:
            for info in tar:
                if info.name in (name, f"./{name}") and info.isfile():
                    fh = tar.extractfile(info)
                    return fh.read() if fh is not None else None
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ArchiveError(
                f"{path}: damaged .tar.bz2 archive ({exc}); rebuild it with 'tar cjf'"
            ) from None
    return None


# ---------------------------------------------------------------- safe extraction


def _inside(rel: str) -> bool:
    """Whether a normalised relative path stays inside the destination."""
    parts = PurePosixPath(rel).parts
    depth = 0
    for part in parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return False
        elif part not in ("", "."):
            depth += 1
    return True


def unsafe_member(info: tarfile.TarInfo) -> Optional[str]:
    """Why a member must not be extracted, or None."""
    name = info.name
    if not name or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return f"member {name!r} has an absolute path"
    if ".." in PurePosixPath(name).parts or ".." in name.split("\\"):
        return f"member {name!r} contains '..'"
    if not (info.isfile() or info.isdir() or info.issym() or info.islnk()):
        kind = "fifo" if info.isfifo() else "device file" if info.isdev() else "special file"
        return f"member {name!r} is a {kind}"
    if info.issym():
        link = info.linkname
        if link.startswith("/"):
            return f"member {name!r} is a symlink to the absolute path {link!r}"
        if not _inside(str(PurePosixPath(name).parent / link)):
            return f"member {name!r} is a symlink pointing outside the archive ({link!r})"
    if info.islnk():
        link = info.linkname
        if link.startswith("/") or not _inside(link):
            return f"member {name!r} is a hard link pointing outside the archive ({link!r})"
    return None


def safe_extract(archive_path: PathLike, dest_dir: PathLike) -> List[str]:
    """Extract a session archive into ``dest_dir``; the member names extracted.

    Every member is checked first (absolute paths, '..', device files, links leaving dest), so a
    hostile archive extracts nothing and raises ArchiveError naming the bad member(s). tarfile's
    'data' filter (Python 3.9.17+/3.11.4+) is applied as a second guard when available.
    """
    archive_path, dest = Path(archive_path), Path(dest_dir)
    with _open(archive_path) as tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ArchiveError(
                f"{archive_path}: damaged .tar.bz2 archive ({exc}); rebuild it with 'tar cjf'"
            ) from None
        problems = [why for why in map(unsafe_member, members) if why]
        if problems:
            raise ArchiveError(
                f"{archive_path}: refusing to extract: {join_problems(problems)} "
                "(rebuild the archive from a plain directory without such entries)"
            )
        dest.mkdir(parents=True, exist_ok=True)
        try:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(str(dest), members=members, filter="data")
            else:  # pragma: no cover - Python without extraction filters
                tar.extractall(str(dest), members=members)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ArchiveError(f"{archive_path}: extraction into {dest} failed: {exc}") from None
    return [m.name for m in members]
