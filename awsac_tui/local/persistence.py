"""The local cloud's memory on disk: EC2, S3 and SimpleDB state, written through at every change.

Runs inside the server process (server.py). Every request that changes state is answered only
after the state it changed is on disk (group commit: one writer thread, many waiting requests),
so a ``kill -9`` loses nothing that was acknowledged. At ``up`` the state is read back into moto's
backends. Layout under ``<local>/state/``:

- ``manifest.json``: format and moto version;
- ``ec2/<region>.pkl``: the whole EC2 backend of that region (instances, volumes, snapshots, key
  pairs, security groups, images, tags), pickled (~20 ms, ~1 MB with moto's default images);
- ``sdb/<region>/<sha1 of domain>.pkl``: one SimpleDB domain and its items;
- ``s3/buckets/<bucket>/bucket.pkl`` (configuration), ``keys/<sha1 of key>.pkl`` (the versions of
  one key, without content), ``multiparts/<sha1 of upload id>.pkl`` (an unfinished upload),
  ``s3/extras.pkl`` (object and bucket tags); ``s3/blobs/<id>``: object content. moto's own value
  buffer of each object is replaced by a file here (``BlobBuffer``), so content is written once,
  by moto, and never copied again.

moto's own recorder (``moto_api/recorder``) does not serve: it logs every request (reads too) as
JSON with base64 bodies and replays them all at start, so the cost of ``up`` grows with the whole
history, ids come out different at replay (moto draws them at random), and a replayed RunInstances
would boot instances again.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import pickle
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

log = logging.getLogger("awsac.local.persistence")

FORMAT = 1
STATE_DIR_NAME = "state"
READ_PREFIXES = ("Describe", "Get", "List", "Search")
SDB_READS = {"GetAttributes", "Select", "ListDomains", "DomainMetadata"}
S3_READ_METHODS = {"GET", "HEAD", "OPTIONS"}

Unit = tuple[str, ...]  # ("ec2", region) | ("sdb", domain) | ("s3", bucket) | ("all",) | ...


class StateError(Exception):
    """The saved state cannot be read back."""


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# ---- object content: one file per value buffer ----------------------------------------------------


class BlobBuffer:
    """A file in ``s3/blobs/`` standing in for the SpooledTemporaryFile moto keeps an object in.

    Opens the file per call, so 10,000 objects hold no open descriptors. ``bucket`` is set when the
    object was written to disk as part of that bucket: its content must then stay until the
    bucket's next write no longer names it.
    """

    def __init__(self, store: StateStore, path: Path, *, create: bool = True) -> None:
        self.store = store
        self.path = path
        self.pos = 0
        self.closed = False
        self.bucket: str | None = None
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")

    def _check(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file.")

    def seek(self, offset: int, whence: int = 0) -> int:
        self._check()
        if whence == 0:
            self.pos = offset
        elif whence == 1:
            self.pos += offset
        else:
            self.pos = self.path.stat().st_size + offset
        return self.pos

    def tell(self) -> int:
        self._check()
        return self.pos

    def read(self, size: int = -1) -> bytes:
        self._check()
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.pos)
                data = fh.read() if size is None or size < 0 else fh.read(size)
        except FileNotFoundError as exc:
            raise ValueError(f"the content of this object is gone ({self.path})") from exc
        self.pos += len(data)
        return data

    def write(self, data: bytes) -> int:
        self._check()
        with self.path.open("r+b") as fh:
            fh.seek(self.pos)
            fh.write(data)
        self.pos += len(data)
        return len(data)

    def truncate(self, size: int | None = None) -> int:
        self._check()
        size = self.pos if size is None else size
        with self.path.open("r+b") as fh:
            fh.truncate(size)
        return size

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.store.retire_blob(self)


class _TempfileShim:
    """Stands in for the ``tempfile`` module inside moto.s3.models: value buffers become blobs."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def SpooledTemporaryFile(self, max_size: int = 0, *args: Any, **kwargs: Any) -> BlobBuffer:  # noqa: N802
        return self.store.new_blob()

    def __getattr__(self, name: str) -> Any:
        import tempfile

        return getattr(tempfile, name)


# ---- pickling moto's objects ----------------------------------------------------------------------

_LOCK_TYPE = type(threading.Lock())
_RLOCK_TYPE = type(threading.RLock())
_loading: StateStore | None = None  # the store whose blobs unpickled keys attach to


def _load_key(state: dict[str, Any], blob: str, bucket: str | None) -> Any:
    from moto.s3.models import FakeKey

    key = FakeKey.__new__(FakeKey)
    key.__dict__.update(state)
    assert _loading is not None
    buffer = BlobBuffer(_loading, _loading.blob_dir / (blob or "let-go"), create=False)
    buffer.bucket = bucket
    if not blob:
        buffer.closed = True
    elif not buffer.path.is_file():
        buffer.closed = True
        _loading.missing_blobs += 1
    key._value_buffer = buffer
    key.lock = threading.Lock()
    return key


def _load_bucket(state: dict[str, Any]) -> Any:
    from moto.s3.models import FakeBucket, MultipartDict
    from moto.s3.utils import _VersionedKeyStore

    bucket = FakeBucket.__new__(FakeBucket)
    bucket.__dict__.update(state)
    bucket.keys = _VersionedKeyStore()
    bucket.multiparts = MultipartDict()
    return bucket


class _Pickler(pickle.Pickler):
    """Pickles moto's objects: locks as new locks, object content as the name of its blob."""

    def __init__(
        self, file: io.BytesIO, bucket: str | None = None, refs: dict[int, Any] | None = None
    ) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.bucket = bucket
        self.refs = refs or {}  # id(obj) -> the name it is pickled by (persistent_id)
        from moto.s3.models import FakeBucket, FakeKey

        self._key_type = FakeKey
        self._bucket_type = FakeBucket

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is _LOCK_TYPE:
            return threading.Lock, ()
        if kind is _RLOCK_TYPE:
            return threading.RLock, ()
        if kind is self._key_type:
            buffer = obj.__dict__.get("_value_buffer")
            state = {k: v for k, v in obj.__dict__.items() if k not in ("_value_buffer", "lock")}
            if not isinstance(buffer, BlobBuffer):
                raise pickle.PicklingError("an S3 object whose content is not in a blob")
            if self.bucket is not None and not buffer.closed:
                buffer.bucket = self.bucket
            # content moto let go (the parts of a completed upload) is not kept
            blob = "" if buffer.closed else buffer.path.name
            return _load_key, (state, blob, self.bucket)
        if kind is self._bucket_type:
            state = {k: v for k, v in obj.__dict__.items() if k not in ("keys", "multiparts")}
            return _load_bucket, (state,)
        return NotImplemented

    def persistent_id(self, obj: Any) -> Any:
        return self.refs.get(id(obj)) if self.refs else None


def dumps(obj: Any, bucket: str | None = None, refs: dict[int, Any] | None = None) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, bucket, refs).dump(obj)
    return buffer.getvalue()


EC2_DEFAULTS = ("amis", "snapshots")  # what moto makes at every backend's birth (~1,300 each)


def _moto_made(obj: Any, account_id: str) -> bool:
    """Whether an image or snapshot is one of moto's own (another account's, made at birth)."""
    return str(getattr(obj, "owner_id", account_id)) != account_id


def dumps_ec2(backend: Any, account_id: str) -> bytes:
    """A region's EC2 backend without the images and snapshots moto makes itself.

    Those are another account's (ours make, register and copy are ``account_id``'s). Objects that
    point at one of them, or at the backend, are pickled by name (an image by its id, which moto
    keeps; a snapshot by the image it backs, since moto draws new snapshot ids at every birth)
    and find the new backend's own at load (``loads_ec2``).
    """
    refs: dict[int, Any] = {id(backend): ("backend",)}
    own: dict[str, dict[str, Any]] = {"amis": {}, "snapshots": {}}
    for key, ami in backend.amis.items():
        if _moto_made(ami, account_id):
            refs[id(ami)] = ("amis", key)
        else:
            own["amis"][key] = ami
    for key, snapshot in backend.snapshots.items():
        if _moto_made(snapshot, account_id) and getattr(snapshot, "from_ami", None):
            refs[id(snapshot)] = ("ami-snapshot", snapshot.from_ami)
        else:
            own["snapshots"][key] = snapshot
    state = {k: v for k, v in backend.__dict__.items() if k not in EC2_DEFAULTS}
    return dumps({"kind": "ec2-without-defaults", "state": state, **own}, refs=refs)


def loads_ec2(data: bytes, new_backend: Callable[[], Any]) -> Any:
    """The backend ``dumps_ec2`` wrote: a new backend (``new_backend()``) with the saved state.

    A whole pickled backend (as the first version wrote) is returned as it is.
    """

    class Unpickler(pickle.Unpickler):
        backend: Any = None
        by_ami: dict[str, Any] | None = None

        def persistent_load(self, pid: Any) -> Any:
            if self.backend is None:
                self.backend = new_backend()
            if pid == ("backend",):
                return self.backend
            kind, key = pid
            if kind == "ami-snapshot":
                if self.by_ami is None:
                    self.by_ami = {
                        s.from_ami: s
                        for s in self.backend.snapshots.values()
                        if getattr(s, "from_ami", None)
                    }
                return self.by_ami[key]
            return getattr(self.backend, kind)[key]

    unpickler = Unpickler(io.BytesIO(data))
    saved = unpickler.load()
    if not (isinstance(saved, dict) and saved.get("kind") == "ec2-without-defaults"):
        return saved  # a whole backend
    backend = unpickler.backend if unpickler.backend is not None else new_backend()
    backend.__dict__.update(saved["state"])
    for kind in EC2_DEFAULTS:
        getattr(backend, kind).update(saved[kind])
    return backend


# ---- what was restored ----------------------------------------------------------------------------


@dataclass
class RestoreSummary:
    """What ``up`` found on disk and put back (shown by ``local up`` and ``local status``)."""

    directory: str
    restored: bool = False  # False: no saved state, a new empty local cloud
    seconds: float = 0.0  # wall time of reading the state back (up to the first answer)
    cpu_seconds: float = 0.0  # CPU time of the same (what a loaded machine does not inflate)
    buckets: int = 0
    objects: int = 0
    object_bytes: int = 0
    multipart_uploads: int = 0
    domains: int = 0
    items: int = 0
    volumes: int = 0
    snapshots: int = 0
    key_pairs: int = 0
    instances: int = 0  # instance records kept (terminated and stopped ones)
    terminated_at_restore: list[str] = field(default_factory=list)  # running when it went down
    orphan_blobs_removed: int = 0
    missing_blobs: int = 0
    moto_version: str = ""
    saved_by_moto: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- the store --------------------------------------------------------------------------------------


class StateStore:
    """Writes the backends' state through to ``directory`` and reads it back at start.

    ``backend_lock`` is the lock every request and thread holds while it reads or changes moto's
    backends (common.BACKEND_LOCK): the writer holds it while it pickles (planning), never while
    it writes files; a request commits after it released it.
    """

    def __init__(self, directory: Path, account_id: str, backend_lock: Any) -> None:
        self.directory = directory
        self.account_id = account_id
        self.backend_lock = backend_lock
        self.blob_dir = directory / "s3" / "blobs"
        self.error: str | None = None  # the last write failure, shown by `local status`
        self.writes = 0
        self.missing_blobs = 0
        self._cond = threading.Condition()
        self._dirty: dict[Unit, None] = {}
        self._seq = 0  # commits asked for
        self._done = 0  # commits on disk
        # object content on disk: blob name -> the file that names it, and the reverse; content
        # moto let go is removed once no file names it any more
        self._blob_owner: dict[str, tuple[str, ...]] = {}
        self._owned: dict[tuple[str, ...], set[str]] = {}
        self._retired: set[Path] = set()
        self._s3_written: dict[str, dict[str, tuple[Any, ...]]] = {}  # bucket -> key -> fingerprint
        self._generation = 0  # bumped by wipe(): plans made before it are dropped
        self._stopping = False
        self._writing = threading.Lock()  # held while files are written, and by wipe()
        self._writer: threading.Thread | None = None

    # ---- set-up ----------------------------------------------------------------------------

    def install(self) -> None:
        """Make moto keep S3 object content in blob files (before any object exists)."""
        import moto.s3.models as s3_models

        s3_models.tempfile = _TempfileShim(self)  # type: ignore[assignment]
        self.blob_dir.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self._writer = threading.Thread(target=self._write_loop, name="state-writer", daemon=True)
        self._writer.start()

    def stop(self) -> None:
        """Write what is pending and stop the writer (at shutdown)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._writer is not None:
            self._writer.join(timeout=30)

    def new_blob(self) -> BlobBuffer:
        return BlobBuffer(self, self.blob_dir / uuid.uuid4().hex)

    def retire_blob(self, blob: BlobBuffer) -> None:
        """An object's content was let go: remove it now, or once its bucket no longer names it."""
        if blob.bucket is None:
            with contextlib.suppress(FileNotFoundError):
                blob.path.unlink()
            return
        with self._cond:
            self._retired.add(blob.path)  # removed once no saved file names it

    def wipe(self) -> None:
        """Forget everything on disk (``awsac local reset``; the caller holds the backend lock)."""
        with self._writing:
            with self._cond:
                self._generation += 1
                self._dirty.clear()
                self._retired.clear()
                self._s3_written.clear()
                self._blob_owner.clear()
                self._owned.clear()
            shutil.rmtree(self.directory, ignore_errors=True)
            self.blob_dir.mkdir(parents=True, exist_ok=True)
            self._write_manifest()

    def _write_manifest(self) -> None:
        import moto

        manifest = {"format": FORMAT, "moto": moto.__version__, "written_by_pid": os.getpid()}
        _write_atomic(self.directory / "manifest.json", json.dumps(manifest).encode())

    # ---- the request path ----------------------------------------------------------------------

    def units_of(self, environ: dict[str, Any], dispatcher: Any) -> list[Unit]:
        """The state units a request may change ([] for a read); call before moto sees it."""
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if path.startswith("/moto-api"):
            return [] if method in S3_READ_METHODS else [("all",)]
        if path.startswith("/latest/"):
            return []
        host = dispatcher.infer_service_region_host(environ, path)
        service = (dispatcher.get_backend_for_host(host) if host else None) or "s3"
        if service == "s3":
            if method in S3_READ_METHODS:
                return []
            hostname = environ.get("HTTP_HOST", "").rsplit(":", 1)[0]
            if not _path_style(hostname):
                return [("s3-all",)]  # virtual-hosted: the bucket is in the host name
            bucket, _, key = path.lstrip("/").partition("/")
            if not bucket:
                return [("s3-all",)]
            query = environ.get("QUERY_STRING", "")
            if key and not any(q in query for q in ("uploads", "uploadId")):
                try:  # WSGI hands the path over as latin-1 text of its bytes
                    return [("s3key", bucket, key.encode("latin-1").decode("utf-8"))]
                except UnicodeError:
                    pass
            return [("s3", bucket)]  # the bucket itself, several keys, or an upload
        if service not in ("ec2", "sdb"):
            return []
        params = _form_params(environ)
        action = params.get("Action", "")
        if service == "ec2":
            return [] if action.startswith(READ_PREFIXES) else [("ec2", _region_of(environ, host))]
        return self.simpledb_units(params)

    def simpledb_units(self, params: dict[str, str]) -> list[Unit]:
        """The units a SimpleDB request (its Query parameters) may change."""
        if params.get("Action", "") in SDB_READS:
            return []
        domain = params.get("DomainName")
        return [("sdb", domain)] if domain else [("sdb-all",)]

    @contextlib.contextmanager
    def changing(self, *units: Unit) -> Iterator[None]:
        """For changes made outside a request (the runner): hold the backend lock, then commit."""
        with self.backend_lock:
            yield
        self.commit(list(units))

    def commit(self, units: list[Unit]) -> None:
        """Return once ``units`` are on disk as they are now (or the writer gave up on them).

        Never call it holding the backend lock: the writer needs it.
        """
        if self._writer is None or not units:
            return
        with self._cond:
            self._seq += 1
            mine = self._seq
            for unit in units:
                self._dirty[unit] = None
            self._cond.notify_all()
            while self._done < mine and self._writer.is_alive():
                self._cond.wait(timeout=1.0)

    # ---- the writer ---------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while not self._dirty and not self._stopping:
                    self._cond.wait()
                if not self._dirty and self._stopping:
                    return
                batch = list(self._dirty)
                self._dirty.clear()
                upto = self._seq
            try:
                self.write_units(batch)
                self.error = None
            except Exception as exc:  # a disk problem must not take the cloud down
                log.exception("saving the local cloud's state failed")
                self.error = f"{type(exc).__name__}: {exc}"
                with self.backend_lock:
                    self._s3_written.clear()  # what was planned may not be on disk: redo all
            with self._cond:
                self._done = max(self._done, upto)
                self._cond.notify_all()

    def write_all(self) -> None:
        """Write every unit now (after restore, reset and at shutdown)."""
        self.write_units([("all",)])

    def write_units(self, units: list[Unit]) -> None:
        """Plan the writes under the backend lock (pickling), then write the files without it."""
        ops: list[tuple[Path, bytes | None]] = []
        with self.backend_lock:
            generation = self._generation
            expanded: list[Unit] = []
            for unit in units:
                if unit[0] == "all":
                    expanded += self._all_units()
                elif unit[0] == "sdb-all":
                    expanded += self._sdb_units()
                elif unit[0] == "s3-all":
                    expanded += [u for u in self._all_units() if u[0] == "s3"]
                else:
                    expanded.append(unit)
            if any(u[0] in ("s3", "s3key") for u in expanded):
                from moto.s3.models import s3_backends

                tagger = s3_backends[self.account_id]["aws"].tagger
                ops.append((self.directory / "s3" / "extras.pkl", dumps(tagger)))
            for unit in dict.fromkeys(expanded):
                if unit[0] == "ec2":
                    ops += self._plan_ec2(unit[1])
                elif unit[0] == "sdb":
                    ops += self._plan_domain(unit[1])
                elif unit[0] == "s3":
                    ops += self._plan_bucket(unit[1])
                elif unit[0] == "s3key":
                    ops += self._plan_key(unit[1], unit[2])
        with self._writing:
            if generation != self._generation:
                return  # forgotten (reset) meanwhile
            for path, data in ops:
                if data is None:
                    if path.is_dir():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
                else:
                    _write_atomic(path, data)
            with self._cond:
                due = {p for p in self._retired if p.name not in self._blob_owner}
                self._retired -= due
            for path in due:
                path.unlink(missing_ok=True)
            self.writes += 1

    def _all_units(self) -> list[Unit]:
        from moto.ec2.models import ec2_backends
        from moto.s3.models import s3_backends

        units: list[Unit] = [("ec2", r) for r in list(ec2_backends[self.account_id].keys())]
        units += self._sdb_units()
        buckets = set(s3_backends[self.account_id]["aws"].buckets)
        on_disk = self.directory / "s3" / "buckets"
        if on_disk.is_dir():
            buckets |= {p.name for p in on_disk.iterdir() if p.is_dir()}
        units += [("s3", b) for b in sorted(buckets)]
        return units

    def _sdb_regions(self) -> list[str]:
        from moto.sdb.models import sdb_backends

        regions = set(sdb_backends[self.account_id].keys())
        if (self.directory / "sdb").is_dir():
            regions |= {p.name for p in (self.directory / "sdb").iterdir() if p.is_dir()}
        return sorted(regions)

    def _sdb_units(self) -> list[Unit]:
        from moto.sdb.models import sdb_backends

        names: set[str] = set()
        for region in self._sdb_regions():
            if region in sdb_backends[self.account_id].keys():
                names |= set(sdb_backends[self.account_id][region].domains)
            for path in (self.directory / "sdb" / region).glob("*.pkl"):
                with contextlib.suppress(OSError, pickle.UnpicklingError, KeyError, EOFError):
                    names.add(_peek_domain_name(path))
        return [("sdb", n) for n in sorted(names)]

    def _plan_ec2(self, region: str) -> list[tuple[Path, bytes | None]]:
        from moto.ec2.models import ec2_backends

        data = dumps_ec2(ec2_backends[self.account_id][region], self.account_id)
        return [(self.directory / "ec2" / f"{region}.pkl", data)]

    def _plan_domain(self, name: str) -> list[tuple[Path, bytes | None]]:
        from moto.sdb.models import sdb_backends

        backends = sdb_backends[self.account_id]
        ops: list[tuple[Path, bytes | None]] = []
        for region in self._sdb_regions():
            path = self.directory / "sdb" / region / f"{_sha(name)}.pkl"
            backend = backends[region] if region in backends.keys() else None
            domain = backend.domains.get(name) if backend is not None else None
            ops.append((path, dumps({"name": name, "domain": domain}) if domain else None))
        return ops

    def _own(self, owner: tuple[str, ...], blobs: set[str]) -> None:
        """``owner`` (a key's or an upload's file) now names exactly ``blobs`` on disk."""
        for blob in self._owned.pop(owner, set()) - blobs:
            if self._blob_owner.get(blob) == owner:
                del self._blob_owner[blob]
        if blobs:
            self._owned[owner] = blobs
            for blob in blobs:
                self._blob_owner[blob] = owner

    def _plan_key(self, bucket_name: str, key: str) -> list[tuple[Path, bytes | None]]:
        """One key's file; the whole bucket when the key is not there (deleted, or a name that
        did not come through the path as moto read it)."""
        from moto.s3.models import s3_backends

        bucket = s3_backends[self.account_id]["aws"].buckets.get(bucket_name)
        versions = bucket.keys.getlist(key) if bucket is not None else None
        unchanged = versions and self._s3_written.get(bucket_name, {}).get(key) == _fingerprint(
            versions
        )
        if (
            not versions
            or unchanged
            or not (self.directory / "s3" / "buckets" / bucket_name).is_dir()
        ):
            # gone, or no change seen where the path said: the whole bucket, to be sure
            return self._plan_bucket(bucket_name)
        return [self._key_op(bucket_name, key, versions)]

    def _key_op(self, bucket: str, key: str, versions: list[Any]) -> tuple[Path, bytes | None]:
        path = self.directory / "s3" / "buckets" / bucket / "keys" / f"{_sha(key)}.pkl"
        self._own((bucket, "key", key), _blobs_of(versions))
        self._s3_written.setdefault(bucket, {})[key] = _fingerprint(versions)
        return path, dumps({"name": key, "versions": versions}, bucket)

    def _plan_bucket(self, name: str) -> list[tuple[Path, bytes | None]]:
        """The files that bring ``s3/buckets/<name>/`` in line with memory (changed keys only)."""
        from moto.s3.models import s3_backends

        directory = self.directory / "s3" / "buckets" / name
        bucket = s3_backends[self.account_id]["aws"].buckets.get(name)
        if bucket is None:
            for owner in [o for o in self._owned if o[0] == name]:
                self._own(owner, set())
            self._s3_written.pop(name, None)
            return [(directory, None)]
        ops: list[tuple[Path, bytes | None]] = [(directory / "bucket.pkl", dumps(bucket))]
        written = self._s3_written.setdefault(name, {})
        current = dict.copy(bucket.keys)  # key -> [versions]
        for key, versions in current.items():
            if written.get(key) != _fingerprint(versions):
                ops.append(self._key_op(name, key, versions))
        for key in [k for k in written if k not in current]:
            ops.append((directory / "keys" / f"{_sha(key)}.pkl", None))
            self._own((name, "key", key), set())
            del written[key]
        mp_dir = directory / "multiparts"
        uploads = dict(bucket.multiparts)
        for upload_id, multipart in uploads.items():
            self._own((name, "upload", upload_id), _blobs_of([multipart]))
            data = dumps({"id": upload_id, "multipart": multipart}, name)
            ops.append((mp_dir / f"{_sha(upload_id)}.pkl", data))
        for owner in [o for o in self._owned if o[:2] == (name, "upload")]:
            if owner[2] not in uploads:
                self._own(owner, set())
        if mp_dir.is_dir():
            keep = {f"{_sha(u)}.pkl" for u in uploads}
            ops += [(p, None) for p in mp_dir.glob("*.pkl") if p.name not in keep]
        return ops

    # ---- restore ------------------------------------------------------------------------------

    def has_state(self) -> bool:
        return (self.directory / "manifest.json").is_file()

    def check_manifest(self) -> dict[str, Any] | None:
        """The saved state's manifest (None when there is none); StateError when unusable.

        Cheap (no moto import), so a server can refuse at once.
        """
        if not self.has_state():
            return None
        try:
            manifest = json.loads((self.directory / "manifest.json").read_text())
        except (OSError, ValueError) as exc:
            raise StateError(f"{self.directory / 'manifest.json'} cannot be read: {exc}") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            found = manifest.get("format") if isinstance(manifest, dict) else manifest
            raise StateError(
                f"the saved state in {self.directory} has format {found!r}, "
                f"this awsac reads format {FORMAT}"
            )
        return manifest

    def restore(self) -> RestoreSummary:
        """Read the saved state into moto's backends (before the server answers)."""
        import moto

        global _loading
        started, cpu = time.monotonic(), time.process_time()
        summary = RestoreSummary(str(self.directory), moto_version=moto.__version__)
        manifest = self.check_manifest()
        if manifest is None:
            self.wipe()
            return summary
        summary.saved_by_moto = str(manifest.get("moto", "?"))
        _loading = self
        try:
            self._restore_s3(summary)
            self._restore_sdb(summary)
            self._restore_ec2(summary)
        except (
            OSError,
            pickle.UnpicklingError,
            AttributeError,
            ImportError,
            EOFError,
            KeyError,
            TypeError,
            ValueError,
        ) as exc:
            raise StateError(
                f"the saved state in {self.directory} cannot be read back "
                f"(written by moto {summary.saved_by_moto}, this is moto {moto.__version__}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        finally:
            _loading = None
        summary.missing_blobs = self.missing_blobs
        for path in self.blob_dir.iterdir():
            if path.name not in self._blob_owner:
                path.unlink(missing_ok=True)
                summary.orphan_blobs_removed += 1
        summary.restored = True
        summary.seconds = round(time.monotonic() - started, 3)
        summary.cpu_seconds = round(time.process_time() - cpu, 3)
        self._write_manifest()
        return summary

    def _restore_s3(self, summary: RestoreSummary) -> None:
        from moto.s3.models import s3_backends

        backend = s3_backends[self.account_id]["aws"]
        extras = self.directory / "s3" / "extras.pkl"
        if extras.is_file():
            backend.tagger = pickle.loads(extras.read_bytes())
        for directory in sorted((self.directory / "s3" / "buckets").glob("*/")):
            meta = directory / "bucket.pkl"
            if not meta.is_file():
                continue
            bucket = pickle.loads(meta.read_bytes())
            written: dict[str, tuple[Any, ...]] = {}
            for path in (directory / "keys").glob("*.pkl"):
                entry = pickle.loads(path.read_bytes())
                dict.__setitem__(bucket.keys, entry["name"], entry["versions"])
                written[entry["name"]] = _fingerprint(entry["versions"])
                self._own((bucket.name, "key", entry["name"]), _blobs_of(entry["versions"]))
                for version in entry["versions"]:
                    if hasattr(version, "contentsize"):
                        summary.objects += 1
                        summary.object_bytes += int(version.contentsize or 0)
            for path in (directory / "multiparts").glob("*.pkl"):
                entry = pickle.loads(path.read_bytes())
                dict.__setitem__(bucket.multiparts, entry["id"], entry["multipart"])
                self._own((bucket.name, "upload", entry["id"]), _blobs_of([entry["multipart"]]))
                summary.multipart_uploads += 1
            backend.buckets[bucket.name] = bucket
            s3_backends.bucket_accounts[bucket.name] = (bucket.partition, self.account_id)
            self._s3_written[bucket.name] = written
            summary.buckets += 1

    def _restore_sdb(self, summary: RestoreSummary) -> None:
        from moto.sdb.models import sdb_backends

        for region_dir in sorted((self.directory / "sdb").glob("*/")):
            backend = sdb_backends[self.account_id][region_dir.name]
            for path in region_dir.glob("*.pkl"):
                entry = pickle.loads(path.read_bytes())
                backend.domains[entry["name"]] = entry["domain"]
                summary.domains += 1
                summary.items += len(entry["domain"].items)

    def _restore_ec2(self, summary: RestoreSummary) -> None:
        from moto.ec2.models import ec2_backends

        backends = ec2_backends[self.account_id]
        for path in sorted((self.directory / "ec2").glob("*.pkl")):
            region = path.stem
            backends[region] = loads_ec2(path.read_bytes(), lambda r=region: backends[r])

    def count_ec2(self, summary: RestoreSummary) -> None:
        """Count what EC2 holds now into ``summary`` (after the restore's terminations)."""
        from moto.ec2.models import ec2_backends

        for backend in list(ec2_backends[self.account_id].values()):
            summary.volumes += len(backend.volumes)
            summary.snapshots += sum(
                1
                for s in backend.snapshots.values()
                if not s.from_ami and s.owner_id == self.account_id
            )
            summary.key_pairs += len(backend.key_pairs)
            summary.instances += sum(len(r.instances) for r in backend.reservations.values())


def _blobs_of(objects: list[Any]) -> set[str]:
    """Names of the blobs (still open) that S3 objects, their uploads' parts, or uploads hold."""
    found: set[str] = set()
    todo = list(objects)
    while todo:
        obj = todo.pop()
        buffer = getattr(obj, "_value_buffer", None)
        if isinstance(buffer, BlobBuffer) and not buffer.closed:
            found.add(buffer.path.name)
        parts = getattr(obj, "parts", None)  # an upload
        if isinstance(parts, dict):
            todo.extend(parts.values())
        multipart = getattr(obj, "multipart", None)  # an object made from an upload
        if multipart is not None:
            todo.append(multipart)
    return found


def _fingerprint(versions: list[Any]) -> tuple[Any, ...]:
    """What changes when a key's versions, content or object settings change."""
    return tuple(
        (
            id(v),
            getattr(v, "last_modified", None),
            id(getattr(v, "acl", None)),
            getattr(v, "lock_mode", None),
            getattr(v, "lock_legal_status", None),
            getattr(v, "lock_until", None),
            getattr(v, "_storage_class", None),
            getattr(v, "_etag", None),
            id(getattr(v, "_metadata", None)),
        )
        for v in versions
    )


def _peek_domain_name(path: Path) -> str:
    return str(pickle.loads(path.read_bytes())["name"])


def _form_params(environ: dict[str, Any]) -> dict[str, str]:
    """The query and form parameters of a query-protocol request (the body is put back)."""
    params = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    content_type = environ.get("CONTENT_TYPE", "")
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length and content_type.startswith("application/x-www-form-urlencoded"):
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        for key, values in parse_qs(body.decode("utf-8", "replace")).items():
            params[key] = values[0]
    return params


def _path_style(hostname: str) -> bool:
    """Whether requests to ``hostname`` name the bucket in the path (an IP or localhost)."""
    import ipaddress

    if hostname in ("localhost", "") or hostname.startswith("["):
        return True
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return True


def _region_of(environ: dict[str, Any], host: str | None) -> str:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    with contextlib.suppress(IndexError, ValueError):
        scope = auth.split(",")[0].split()[1]
        return scope.split("/")[2]
    if host:
        parts = host.split(".")
        if len(parts) >= 3:
            return parts[1]
    return os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
