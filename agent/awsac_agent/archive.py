"""The session archive: build a ``.tar.bz2`` from a job directory (adding the agent's session-side
files, refusing credential files), list and check one, extract one safely on the instance, and
bundle a job's log redacted (streaming); plus the one rule that keeps a name inside a directory
(``safe_relpath``, also used by the client's downloads). Stdlib only, Python 3.9+.
"""

from __future__ import annotations

import fnmatch
import io
import os
import py_compile
import shutil
import stat
import tarfile
import tempfile
import time
import zipapp
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Callable, Iterator, List, Optional, Sequence, Tuple, Union

from .errors import ArchiveError, FormatError, join_problems
from .fsutil import atomic_path
from .redact import redact_stream

SESSION_SIDE_FILES = ("awsac_all_instances_autorun.sh", "awsac-processjobs.pyz")
AUTORUN_SH, PROCESSJOBS_PYZ = SESSION_SIDE_FILES
PYZ_ENTRY = "awsac_agent.processjobs:main"
PYZ_INTERPRETER = "/usr/bin/env python3"
ARCHIVE_SUFFIX = ".tar.bz2"
JOBS_CFG = "jobs.cfg"

PathLike = Union[str, "os.PathLike[str]"]
Progress = Callable[[int, int], None]  # (bytes done, bytes total)

# Files that hold credentials: never packed into a session archive (which goes to S3 and onto
# every instance) unless session.toml's ``include`` names them. Directory names match any part.
CREDENTIAL_DIRS = (".aws", ".ssh", ".gnupg", ".docker", ".kube")
CREDENTIAL_FILES = (
    "*.pem",
    "*.p12",
    "*.pfx",
    "*.key",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".git-credentials",
    ".env",
    ".env.*",
    "*.env",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "id_ecdsa_sk",
    "id_ed25519_sk",
    "credentials.json",
    "*.keystore",
    "*.jks",
)


# ---------------------------------------------------------------- names inside a directory


def safe_relpath(name: str) -> Tuple[Optional[str], Optional[str]]:
    """(the relative path ``name`` names, None) or (None, why it would leave its directory).

    The one rule for S3 keys written to disk (``results``, ``logs``) and archive members: no
    absolute part, no drive, no backslash, no empty segment, no ``.`` or ``..`` segment, no NUL.
    A leading ``./`` (tar's habit) and one trailing ``/`` (a directory member) are allowed.
    """
    rel = name[2:] if name.startswith("./") else name
    if rel.endswith("/") and len(rel) > 1:
        rel = rel[:-1]
    if not rel:
        return None, f"{name!r} names no file"
    if rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
        return None, f"{name!r} has an absolute path"
    if "\\" in rel:
        return None, f"{name!r} contains a backslash"
    if "\0" in rel:
        return None, f"{name!r} contains a NUL character"
    parts = rel.split("/")
    if ".." in parts:
        return None, f"{name!r} contains '..'"
    if "" in parts:
        return None, f"{name!r} has an empty path segment ('//')"
    if "." in parts:
        return None, f"{name!r} has a '.' path segment"
    return rel, None


def is_credential_file(rel: str) -> Optional[str]:
    """Why the relative path ``rel`` looks like a credential file, or None."""
    parts = PurePosixPath(rel).parts
    for part in parts[:-1]:
        if part in CREDENTIAL_DIRS:
            return f"lies in {part}/"
    last = parts[-1] if parts else rel
    if last in CREDENTIAL_DIRS:
        return f"is a {last}/ directory"
    for pattern in CREDENTIAL_FILES:
        if fnmatch.fnmatchcase(last, pattern):
            return f"matches {pattern}"
    return None


def is_included(rel: str, include: Sequence[str]) -> bool:
    """Whether ``include`` (paths or globs relative to the job directory) names ``rel`` or a
    directory above it."""
    for pattern in include:
        pat = pattern.strip().rstrip("/")
        if pat.startswith("./"):
            pat = pat[2:]
        if fnmatch.fnmatchcase(rel, pat) or rel.startswith(pat + "/"):
            return True
    return False


def credential_problems(names: Sequence[str], include: Sequence[str], where: str) -> List[str]:
    """One problem per credential file among ``names`` that ``include`` does not name."""
    out = []
    for rel in names:
        why = is_credential_file(rel)
        if why and not is_included(rel, include):
            out.append(
                f"{where}/{rel}: looks like a credential file ({why}); a session archive goes "
                "to S3 and onto every instance (remove it from the job directory, or list it in "
                f'session.toml: include = ["{rel}"] if the jobs really need it)'
            )
    return out


class _Counting:
    """A file object that reports the bytes read from it (progress of a streaming build)."""

    def __init__(self, fh: IO[bytes], tick: Callable[[int], None]) -> None:
        self._fh = fh
        self._tick = tick

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self._tick(len(data))
        return data


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
    session_files only), entry point ``awsac_agent.processjobs:main``.

    Each module also goes in compiled by this Python (``x.pyc`` beside ``x.py``, hash-based and
    unchecked: the zip never changes): zipimport cannot cache what it compiles, so without them
    every agent start compiles the whole package (0.2 s of CPU of its 0.7 s here). An image
    whose Python has another bytecode magic skips them and compiles the sources as before."""
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
                if path.suffix == ".py":
                    py_compile.compile(
                        str(target),
                        cfile=str(target) + "c",
                        dfile=f"awsac_agent/{rel.as_posix()}",
                        doraise=True,
                        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
                    )
                    st = path.stat()  # the source's time: the same sources, the same zip
                    os.utime(str(target) + "c", ns=(st.st_atime_ns, st.st_mtime_ns))
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dest, 0o755) as tmp_dest:
            zipapp.create_archive(root, tmp_dest, interpreter=PYZ_INTERPRETER, main=PYZ_ENTRY)
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


def _plan_members(
    job_dir: Path, out_path: Path, include: Sequence[str] = ()
) -> List[Tuple[Path, str, Optional[str]]]:
    """(path, member name, symlink target or None) for every entry, or ArchiveError naming
    every entry that cannot go in (links out, special files, credential files)."""
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
    files = [rel for path, rel, _ in members if not path.is_dir() or path.is_symlink()]
    problems += credential_problems(files, include, str(job_dir))
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
    with atomic_path(out_path, 0o644) as tmp:
        with tarfile.open(tmp, "w:bz2", format=tarfile.PAX_FORMAT) as tar:
            fill(tar)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o755) -> None:
    info = _normalise(tarfile.TarInfo(name))
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


# The worker zipapp this process last built, by the state of the sources it was built from: a
# client (or a test run) that starts many sessions builds it once.
_pyz_cache: Tuple[Tuple[Tuple[str, int, int], ...], bytes] = ((), b"")


def _pyz_sources() -> Tuple[Tuple[str, int, int], ...]:
    src = package_dir()
    return tuple(
        (str(p.relative_to(src)), st.st_size, st.st_mtime_ns)
        for p in sorted(src.rglob("*"))
        if "__pycache__" not in p.parts and p.is_file()
        for st in (p.stat(),)
    )


def _agent_file_bytes(name: str) -> bytes:
    global _pyz_cache
    if name == PROCESSJOBS_PYZ:
        sources = _pyz_sources()
        if _pyz_cache[0] != sources:
            with tempfile.TemporaryDirectory(prefix="awsac-pyz-") as tmp:
                _pyz_cache = (
                    sources,
                    build_processjobs_pyz(Path(tmp) / PROCESSJOBS_PYZ).read_bytes(),
                )
        return _pyz_cache[1]
    return session_file(name).read_bytes()


def _check_out_path(out_path: Path) -> None:
    if not out_path.name.endswith(ARCHIVE_SUFFIX):
        raise ArchiveError(
            f"{out_path}: a session archive must be a .tar.bz2 file (rename it to end in .tar.bz2)"
        )


def build_archive(
    job_dir: PathLike,
    out_path: PathLike,
    *,
    jobs_cfg_name: str = JOBS_CFG,
    include: Sequence[str] = (),
    progress: Optional[Progress] = None,
) -> ArchiveReport:
    """Write the session archive of ``job_dir`` to ``out_path`` (a .tar.bz2), streaming.

    The agent's session-side files are added unless the directory has its own. jobs.cfg must be
    at the top and name scripts that exist (a ``jobs_cfg_name`` other than jobs.cfg is stored as
    jobs.cfg). Symlinks must stay inside the directory; credential files are refused unless
    ``include`` names them; nothing is skipped silently. ``progress`` gets (bytes read, total).
    """
    job_dir = Path(job_dir)
    out_path = Path(out_path)
    _check_out_path(out_path)
    if not job_dir.is_dir():
        raise ArchiveError(
            f"{job_dir}: not a directory (give the directory with your job scripts and jobs.cfg)"
        )
    planned = _plan_members(job_dir, out_path, include)
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
    total = sum(p.lstat().st_size for p, _, link in planned if link is None and p.is_file())
    total += sum(len(d) for _, d in agent_data)
    tick = _ticker(progress, total)

    def fill(tar: tarfile.TarFile) -> None:
        for path, rel, link in planned:
            arcname = JOBS_CFG if rel == jobs_cfg_name else rel
            info = _normalise(tar.gettarinfo(str(path), arcname))
            if link is not None:
                info.linkname = link
                tar.addfile(info)
            elif info.isfile():
                with path.open("rb") as fh:
                    tar.addfile(info, _Counting(fh, tick))  # type: ignore[arg-type]
            else:
                tar.addfile(info)
            files.append(arcname)
        for name, data in agent_data:
            _add_bytes(tar, name, data)
            tick(len(data))
            files.append(name)

    _atomic_tar(out_path, fill)
    return ArchiveReport(out_path, out_path.stat().st_size, files, list(missing))


def _ticker(progress: Optional[Progress], total: int) -> Callable[[int], None]:
    """A per-read callback adding up bytes and calling ``progress(done, total)``."""
    done = [0]
    if progress is not None:
        progress(0, total)

    def tick(n: int) -> None:
        done[0] += n
        if progress is not None and n:
            progress(done[0], total)

    return tick


def add_agent_files(
    archive_in: PathLike,
    archive_out: PathLike,
    *,
    include: Sequence[str] = (),
    progress: Optional[Progress] = None,
) -> List[str]:
    """Copy a prebuilt archive (streaming), adding the session-side files it lacks; returns the
    names added. Credential files in it are refused as by ``build_archive``. When nothing is
    missing, the copy is byte for byte (no recompression)."""
    archive_in, archive_out = Path(archive_in), Path(archive_out)
    _check_out_path(archive_out)
    listed = [n[2:] if n.startswith("./") else n for n in check_archive(archive_in)]
    problems = credential_problems(_file_members(archive_in), include, str(archive_in))
    if problems:
        raise ArchiveError(join_problems(problems))
    names = set(listed)
    missing = [n for n in SESSION_SIDE_FILES if n not in names]
    total = archive_in.stat().st_size
    tick = _ticker(progress, total)
    if not missing:
        if archive_in.resolve() != archive_out.resolve():
            archive_out.parent.mkdir(parents=True, exist_ok=True)
            tmp = archive_out.with_name(f".{archive_out.name}.{os.getpid()}.tmp")
            try:
                with archive_in.open("rb") as fin, tmp.open("wb") as fout:
                    while True:
                        block = fin.read(1 << 20)
                        if not block:
                            break
                        fout.write(block)
                        tick(len(block))
                os.replace(tmp, archive_out)
            finally:
                tmp.unlink(missing_ok=True)
        return []
    agent_data = [(n, _agent_file_bytes(n)) for n in missing]

    def fill(tar: tarfile.TarFile) -> None:
        with archive_in.open("rb") as raw:
            with tarfile.open(fileobj=_Counting(raw, tick), mode="r|bz2") as src:  # type: ignore[arg-type]
                for info in src:
                    tar.addfile(info, src.extractfile(info) if info.isfile() else None)
        for name, data in agent_data:
            _add_bytes(tar, name, data)

    _atomic_tar(archive_out, fill)  # writes a temporary file first: archive_in may be archive_out
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


def _file_members(path: Path) -> List[str]:
    """Names of the non-directory members of an archive (normalised)."""
    with _open(path) as tar:
        out = []
        for info in tar:
            if not info.isdir():
                rel, _ = safe_relpath(info.name)
                out.append(rel or info.name)
        return out


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
            links: List[str] = []
            for info in tar:
                why = unsafe_member(info) or _under_link(info, links)
                if why:
                    raise ArchiveError(
                        f"{path}: {why}; an instance would refuse to extract it (rebuild the "
                        "archive from the job directory with relative paths and no links out)"
                    )
                names.append(info.name)
                if info.issym() or info.islnk():
                    links.append(safe_relpath(info.name)[0] or info.name)
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


def _under_link(info: tarfile.TarInfo, links: Sequence[str]) -> Optional[str]:
    """Why a member lies under a link member extracted before it (writing it would follow the
    link), or None."""
    rel = safe_relpath(info.name)[0]
    if not rel:
        return None
    for link in links:
        if rel.startswith(link + "/"):
            return f"member {info.name!r} lies under the link {link!r} (it would be followed)"
    return None


def unsafe_member(info: tarfile.TarInfo) -> Optional[str]:
    """Why a member must not be extracted, or None (the rules of ``safe_relpath``, no device
    files, no link leaving the archive)."""
    name = info.name
    if info.isdir() and name in (".", "./"):  # the archive's own top directory
        return None
    _, why = safe_relpath(name)
    if why:
        return f"member {why}"
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
        links: List[str] = []
        for info in members:
            why = _under_link(info, links)
            if why:
                problems.append(why)
            if info.issym() or info.islnk():
                links.append(safe_relpath(info.name)[0] or info.name)
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


# ---------------------------------------------------------------- a job's log, redacted


def bundle_log(
    src: PathLike,
    dest: PathLike,
    arcname: str,
    *,
    say: Optional[Callable[[str], None]] = None,
    level: int = 9,
) -> int:
    """Write ``dest``, a tar.bz2 holding ``src`` redacted as ``arcname``; returns the number of
    secrets redacted (a missing ``src`` gives an empty member).

    Streams in bounded memory and linear time: the log is redacted chunk by chunk into a file
    beside ``dest`` (the tar header needs the redacted size), which is then compressed and
    removed. ``say`` gets a progress line every 10 % of a log of 32 MiB or more.
    """
    src, dest = Path(src), Path(dest)
    total = src.stat().st_size if src.exists() else 0
    body = dest.with_name(f".{dest.name}.redacted")
    tmp = dest.with_name(f".{dest.name}.tmp")
    t0 = time.monotonic()
    step = [0.1]

    def report(done: int) -> None:
        if say is not None and total >= 32 << 20 and done >= step[0] * 2 * total:
            step[0] += 0.1
            phase = "redacting" if done <= total else "compressing"
            say(
                f"  saving {arcname}: {phase}, {100 * done // (2 * total)} % of "
                f"{total >> 20} MiB after {time.monotonic() - t0:.0f} s"
            )

    try:
        with body.open("wb") as out:
            changed = 0
            if src.exists():
                with src.open("rb") as fh:
                    changed = redact_stream(fh, out.write, report)
        size = body.stat().st_size
        with tarfile.open(str(tmp), "w:bz2", compresslevel=level, format=tarfile.PAX_FORMAT) as tar:
            info = _normalise(tar.gettarinfo(str(body), arcname))
            info.mode = 0o644
            done = [total]

            def tick(n: int) -> None:
                done[0] += n * total // max(size, 1)
                report(done[0])

            with body.open("rb") as fh:
                tar.addfile(info, _Counting(fh, tick))  # type: ignore[arg-type]
        os.replace(tmp, dest)
    finally:
        body.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    if say is not None and total >= 32 << 20:
        say(f"  saved {arcname}: {total >> 20} MiB in {time.monotonic() - t0:.1f} s")
    return changed
