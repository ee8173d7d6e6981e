"""Session records: one TOML file per session in ``<state>/sessions/`` (mode 0600), plus the
paper's ``session-<id>.cfg`` (section ``[sessionconfig]``), which is accepted wherever a record is.

A record also keeps what was downloaded (key, ETag, checksum: ``fetched``) and, once cleaned, the
last known job states (``final_jobs``). Temporary files of a start live beside the records
(``scratch_dir``) and are swept at the next run when their process is gone.
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import shutil
import time
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w
from awsac_agent import s3layout
from awsac_agent.errors import FormatError
from awsac_agent.fsutil import atomic_write
from awsac_agent.sessionid import is_session_id
from awsac_agent.status import DEFAULT_STORE
from awsac_agent.userdata import parse_userdata

from .paths import record_path, sessions_dir
from .spec import CloudProfile

STATES = ("starting", "running", "ended", "cleaned", "failed")
PAPER_KEYS = (
    "session_id",
    "ec2_reservation_id",
    "n_instances",
    "unused_cores",
    "cores_per_instance",
    "runuserdata",
    "shortdescr",
    "bucket",
    "n_jobs",
    "ami_id",
    "ec2_uid",
    "instance_type",
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class FetchedObject:
    """One object ``results`` downloaded: its key relative to the session prefix, the ETag and
    size it had, the CRC32 of the bytes written (base64, as S3 writes it) and where."""

    key: str
    etag: str
    size: int
    crc32: str = ""
    path: str = ""
    at: str = field(default_factory=_now)


@dataclass(frozen=True)
class SessionRecord:
    """Everything the client keeps about one session (the paper's cfg plus cloud and store)."""

    session_id: str
    state: str = "starting"
    shortdescr: str = ""
    bucket: str = ""
    archive_name: str = s3layout.DEFAULT_ARCHIVE_NAME
    instance_type: str = ""
    image_id: str = ""
    image_owner: str | None = None
    n_jobs: int = 0
    n_instances: int = 0
    cores_per_instance: int = 1
    unused_cores: int = 0
    runuserdata: str = ""
    reservation_id: str | None = None
    cloud: CloudProfile = field(default_factory=CloudProfile)
    status_store: str = DEFAULT_STORE
    jobs: tuple[str, ...] = ()  # jobs.cfg lines "snapshot;script;count"
    key_name: str | None = None
    ssh_user: str = "ec2-user"
    spec_path: str | None = None
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)
    error: str | None = None
    fetched: tuple[FetchedObject, ...] = ()  # what `results` downloaded (newest per key)
    final_jobs: tuple[dict[str, str], ...] = ()  # job status records kept by cleanup
    cleaned_at: str | None = None
    # For a later reservation (``awsac retry``, issue 13): how the first one was launched, and
    # how many RunInstances the session made; the assignment and retry policy of its spec.
    launch: dict[str, Any] = field(default_factory=dict)
    reservations: int = 0
    assignment: str = "static"
    max_attempts: int = 3
    retry_failed: bool = False
    jobs_per_instance: int | None = None
    max_instances: int | None = None
    max_vcpus: int | None = None
    path: Path | None = field(default=None, compare=False)  # where it was loaded from

    def with_(self, **changes: Any) -> SessionRecord:
        return dataclasses.replace(self, updated_at=_now(), **changes)

    def fetched_etags(self) -> dict[str, str]:
        """key (relative to the session prefix) -> ETag of every object downloaded."""
        return {f.key: f.etag for f in self.fetched}

    def with_fetched(self, new: list[FetchedObject]) -> SessionRecord:
        """This record with ``new`` downloads noted (replacing older entries of the same key)."""
        keep = {f.key: f for f in self.fetched}
        keep.update({f.key: f for f in new})
        return self.with_(fetched=tuple(sorted(keep.values(), key=lambda f: f.key)))

    def paper_config(self) -> dict[str, str]:
        """The paper's ``[sessionconfig]`` keys and values."""
        return {
            "session_id": self.session_id,
            "ec2_reservation_id": self.reservation_id or "",
            "n_instances": str(self.n_instances),
            "unused_cores": str(self.unused_cores),
            "cores_per_instance": str(self.cores_per_instance),
            "runuserdata": self.runuserdata,
            "shortdescr": self.shortdescr,
            "bucket": self.bucket,
            "n_jobs": str(self.n_jobs),
            "ami_id": self.image_id,
            "ec2_uid": self.image_owner or "",
            "instance_type": self.instance_type,
        }


def _to_toml(rec: SessionRecord) -> dict[str, Any]:
    data = dataclasses.asdict(rec)
    data.pop("path", None)
    cloud = {k: v for k, v in data.pop("cloud").items() if v is not None}
    data["jobs"] = list(rec.jobs)
    data["fetched"] = [dataclasses.asdict(f) for f in rec.fetched]
    data["final_jobs"] = [dict(j) for j in rec.final_jobs]
    out = {k: v for k, v in data.items() if v is not None and v != []}
    out["jobs"] = list(rec.jobs)
    out["cloud"] = cloud
    return out


def _from_toml(data: dict[str, Any], path: Path) -> SessionRecord:
    known = {f.name for f in dataclasses.fields(SessionRecord)}
    kw = {k: v for k, v in data.items() if k in known and k not in ("cloud", "path")}
    cloud = data.get("cloud") or {}
    kw["cloud"] = CloudProfile(
        local=bool(cloud.get("local", False)),
        profile=cloud.get("profile"),
        region=cloud.get("region"),
        endpoint_url=cloud.get("endpoint_url"),
    )
    kw["jobs"] = tuple(kw.get("jobs") or ())
    fetched_known = {f.name for f in dataclasses.fields(FetchedObject)}
    kw["fetched"] = tuple(
        FetchedObject(**{k: v for k, v in f.items() if k in fetched_known})
        for f in kw.get("fetched") or ()
        if isinstance(f, dict) and "key" in f and "etag" in f and "size" in f
    )
    kw["final_jobs"] = tuple(
        {str(k): str(v) for k, v in j.items()}
        for j in kw.get("final_jobs") or ()
        if isinstance(j, dict)
    )
    if "session_id" not in kw:
        raise FormatError(f"{path}: not a session record (no session_id)")
    if kw.get("state", "starting") not in STATES:
        raise FormatError(f"{path}: unknown state {kw.get('state')!r} (one of {', '.join(STATES)})")
    return SessionRecord(**kw, path=path)


def save_record(rec: SessionRecord) -> SessionRecord:
    """Write the record atomically (mode 0600) to its place in the state dir; returns it with path."""
    path = record_path(rec.session_id)
    atomic_write(path, tomli_w.dumps(_to_toml(rec)).encode(), 0o600, dir_mode=0o700)
    return dataclasses.replace(rec, path=path)


def update_record(rec: SessionRecord, **changes: Any) -> SessionRecord:
    """Save ``changes`` (e.g. ``state``) onto the stored record, re-read first, so that what
    another command wrote meanwhile (``results``' downloads, a retry's launch) is kept; ``rec``
    itself when nothing is stored."""
    path = record_path(rec.session_id)
    current = read_record_file(path) if path.is_file() else rec
    return save_record(current.with_(**changes))


def delete_record(rec: SessionRecord) -> bool:
    path = record_path(rec.session_id)
    if path.exists():
        path.unlink()
        return True
    return False


def read_record_file(path: Path) -> SessionRecord:
    """A record from a TOML record file or a paper-style ``session-<id>.cfg``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FormatError(
            f"{path}: file not found (give a session id, a record or a session-<id>.cfg)"
        ) from None
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not UTF-8 text") from None
    if "[sessionconfig]" in text:
        return read_paper_cfg(path, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FormatError(f"{path}: not a session record: {exc}") from None
    return _from_toml(data, path)


def _int(value: str, key: str, path: Path) -> int:
    try:
        return int(value or 0)
    except ValueError:
        raise FormatError(f"{path}: [sessionconfig] {key} = {value!r} is not a number") from None


def read_paper_cfg(path: Path, text: str | None = None) -> SessionRecord:
    """A record from the paper's ``session-<id>.cfg``; the stored TOML record wins when it exists."""
    cp = configparser.ConfigParser(interpolation=None)
    try:
        cp.read_string(text if text is not None else path.read_text(encoding="utf-8"), str(path))
    except configparser.Error as exc:
        raise FormatError(f"{path}: cannot parse: {exc}") from None
    if not cp.has_section("sessionconfig"):
        raise FormatError(f"{path}: no [sessionconfig] section (is it a session-<id>.cfg?)")
    s = dict(cp["sessionconfig"])
    sid = s.get("session_id", "")
    if not is_session_id(sid):
        raise FormatError(f"{path}: session_id {sid!r} is not a session id")
    stored = record_path(sid)
    if stored.exists():
        return read_record_file(stored)
    cloud = CloudProfile(
        local=s.get("awsac_cloud", "") == "local",
        profile=s.get("awsac_profile") or None,
        region=s.get("awsac_region") or None,
        endpoint_url=s.get("awsac_endpoint_url") or None,
    )
    runuserdata = s.get("runuserdata", "")
    parsed = parse_userdata(runuserdata)
    archive_name = parsed.archive_name if parsed else s3layout.DEFAULT_ARCHIVE_NAME
    return SessionRecord(
        session_id=sid,
        state=s.get("awsac_state", "running") if s.get("awsac_state") in STATES else "running",
        shortdescr=s.get("shortdescr", ""),
        bucket=s.get("bucket", ""),
        archive_name=archive_name,
        instance_type=s.get("instance_type", ""),
        image_id=s.get("ami_id", ""),
        image_owner=s.get("ec2_uid") or None,
        n_jobs=_int(s.get("n_jobs", "0"), "n_jobs", path),
        n_instances=_int(s.get("n_instances", "0"), "n_instances", path),
        cores_per_instance=_int(s.get("cores_per_instance", "1"), "cores_per_instance", path) or 1,
        unused_cores=_int(s.get("unused_cores", "0"), "unused_cores", path),
        runuserdata=runuserdata,
        reservation_id=s.get("ec2_reservation_id") or None,
        cloud=cloud,
        status_store=s.get("awsac_status_store", DEFAULT_STORE),
        path=path,
    )


def paper_cfg_text(rec: SessionRecord) -> str:
    """The paper's ``session-<id>.cfg`` text (its keys, plus awsac_* keys naming the cloud)."""
    lines = ["[sessionconfig]"]
    lines += [f"{k} = {v}" for k, v in rec.paper_config().items()]
    c = rec.cloud
    lines.append(f"awsac_cloud = {'local' if c.local else 'aws'}")
    for key, val in (
        ("awsac_profile", c.profile),
        ("awsac_region", c.region),
        ("awsac_endpoint_url", c.endpoint_url),
    ):
        if val:
            lines.append(f"{key} = {val}")
    lines.append(f"awsac_status_store = {rec.status_store}")
    return "\n".join(lines) + "\n"


def write_paper_cfg(rec: SessionRecord, directory: Path) -> Path:
    """Write ``session-<id>.cfg`` into ``directory`` (as the paper's --start did)."""
    path = Path(directory) / f"session-{rec.session_id}.cfg"
    atomic_write(path, paper_cfg_text(rec).encode(), 0o600, dir_mode=0o700)
    return path


def list_records() -> list[SessionRecord]:
    """Every readable record in the state dir, newest first."""
    out = []
    d = sessions_dir()
    if not d.is_dir():
        return []
    for p in d.glob("*.toml"):
        try:
            out.append(read_record_file(p))
        except FormatError:
            continue
    return sorted(out, key=lambda r: (r.created_at, r.session_id), reverse=True)


def load_record(ref: str | Path) -> SessionRecord:
    """A record from a session id, a unique prefix of one, a record path or a ``session-<id>.cfg``."""
    text = str(ref)
    p = Path(text).expanduser()
    if p.is_file():
        return read_record_file(p)
    if text.endswith((".toml", ".cfg")) or "/" in text:
        raise FormatError(
            f"{p}: file not found (give a session id, a record or a session-<id>.cfg)"
        )
    name = text.removeprefix("session-")
    exact = record_path(name)
    if exact.is_file():
        return read_record_file(exact)
    d = sessions_dir()
    stems = sorted(d.glob("*.toml")) if d.is_dir() else []
    matches = [q for q in stems if q.stem.startswith(name)]
    if not matches:  # also the random suffix or any unique part (`awsac check 5a95`)
        matches = [q for q in stems if name in q.stem]
    if len(matches) == 1:
        return read_record_file(matches[0])
    if not matches:
        raise FormatError(
            f"no session matches {text!r} in {d} (see `awsac list`, or give a session-<id>.cfg path)"
        )
    names = ", ".join(q.stem for q in matches[:5])
    raise FormatError(f"{text!r} matches {len(matches)} sessions ({names}...); give more of the id")


# ----------------------------------------------------------------------------- scratch files


def scratch_dir() -> Path:
    """Where a start keeps its temporary files (the built archive): beside the records, so a
    killed start leaves nothing in $TMPDIR and the next run can sweep what it left."""
    return sessions_dir() / ".scratch"


def new_scratch(kind: str) -> Path:
    """A new private directory in ``scratch_dir`` named after this process (``kind-PID-N``)."""
    base = scratch_dir()
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    for n in range(1000):
        path = base / f"{kind}-{os.getpid()}-{int(time.time() * 1000) % 10**9}-{n}"
        try:
            path.mkdir(mode=0o700)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{base}: no free name for a scratch directory (remove old ones)")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_scratch(stale_seconds: float = 600.0) -> list[Path]:
    """Remove what killed runs left: scratch directories whose process is gone, and temporary
    record files (``.NAME.*.tmp`` of ``atomic_write``) older than ``stale_seconds``; returns
    what was removed."""
    removed: list[Path] = []
    base = scratch_dir()
    if base.is_dir():
        for path in base.iterdir():
            parts = path.name.split("-")
            pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
            if pid is not None and (pid == os.getpid() or _pid_alive(pid)):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    d = sessions_dir()
    if d.is_dir():
        now = time.time()
        for path in d.glob(".*.tmp"):
            try:
                if now - path.stat().st_mtime > stale_seconds:
                    path.unlink()
                    removed.append(path)
            except FileNotFoundError:
                continue
    return removed


def scratch_files() -> list[Path]:
    """Every file left in the scratch directory (the leak audit counts them)."""
    base = scratch_dir()
    return sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
