"""The session verbs, UI-free and async: start, check, results, cleanup, kill, terminate, logs.

Used by the headless ``awsac`` commands and by the TUI. Every verb takes a SessionRecord.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import inspect
import io
import os
import shutil
import tarfile
import tempfile
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from awsac_agent import assignment, jobscfg, s3layout
from awsac_agent.bootstrap import stock_userdata
from awsac_agent.errors import AwsacError, CloudError, FormatError, join_problems
from awsac_agent.sessionid import SESSION_TAG, new_session_id, session_tag_filter
from awsac_agent.status import PENDING, TERMINAL
from awsac_agent.userdata import UserData, build_userdata, parse_userdata

from . import records
from .cloud import Cloud, cloud_errors, error_code, translate
from .records import SessionRecord
from .spec import CloudProfile, SessionSpec
from .store import open_store

if TYPE_CHECKING:
    from .monitor import SessionSnapshot

BOOKKEEPING_PREFIXES = (s3layout.LIVE_PREFIX, s3layout.CONTROL_PREFIX, s3layout.STATUS_PREFIX)
PART_SIZE = 8 * 1024 * 1024

Say = Callable[[str], None]
Progress = Callable[[int, int], None]  # (bytes done, bytes total)
Confirm = Callable[[str], bool | Awaitable[bool]]


class SessionError(AwsacError):
    """A session verb that could not be carried out."""

    exit_code = 1


def _quiet(_: str) -> None:
    return None


async def _ask(confirm: Confirm | None, question: str) -> bool:
    if confirm is None:
        return True
    answer = confirm(question)
    if inspect.isawaitable(answer):
        answer = await answer
    return bool(answer)


@contextlib.asynccontextmanager
async def cloud_for(
    record_or_profile: SessionRecord | CloudProfile, cloud: Cloud | None = None
) -> AsyncIterator[Cloud]:
    """The given Cloud, or a new one for the record's profile (closed on exit)."""
    if cloud is not None:
        yield cloud
        return
    prof = (
        record_or_profile.cloud
        if isinstance(record_or_profile, SessionRecord)
        else record_or_profile
    )
    async with Cloud(prof) as c:
        yield c


def _store(record: SessionRecord, cloud: Cloud):
    return open_store(record.status_store, cloud, record.session_id, record.bucket)


# ----------------------------------------------------------------------------- start


@dataclass(frozen=True)
class StartPlan:
    """A validated start, before anything is created."""

    spec: SessionSpec
    spec_path: Path
    job_lines: tuple[jobscfg.JobLine, ...]
    archive_path: Path
    archive_name: str
    archive_note: str | None
    vcpus: int
    cores_per_instance: int
    n_jobs: int
    n_instances: int
    unused_cores: int
    session_id: str
    userdata: str
    cloud: CloudProfile
    tmpdir: Path | None = None

    def summary(self) -> str:
        return (
            f"instance type {self.spec.instance_type!r} with {self.cores_per_instance} core(s) per "
            f"instance. With {self.n_jobs} job(s) this makes {self.n_instances} instance(s). "
            f"Unused cores: {self.unused_cores}."
        )


def _archive_members(archive: Path) -> list[str]:
    with tarfile.open(archive, "r:*") as tar:
        return [m.name.lstrip("./") for m in tar.getmembers() if m.isfile()]


def _load_spec(spec_path: Path, archive: Path | None) -> tuple[SessionSpec, list[jobscfg.JobLine]]:
    """The validated spec and its jobs (from jobs.cfg, or from inside the given archive)."""
    from . import spec as specmod

    if archive is None:
        return specmod.load_session(spec_path)
    spec = dataclasses.replace(specmod.load_spec(spec_path), archive=str(archive.resolve()))
    jobs, problems = specmod.jobs_from_archive(archive.resolve(), str(spec_path), {})
    # The archive given with -a was just checked (readable .tar.bz2, jobs.cfg inside); validate
    # the rest of the spec without it so a bad archive is reported once.
    problems += specmod.validate_spec(dataclasses.replace(spec, archive=None), jobs, str(spec_path))
    if problems:
        raise FormatError(join_problems(problems), problems)
    assert jobs is not None
    return spec, jobs


async def _vcpus(cloud: Cloud, instance_type: str, source: str) -> int:
    ec2 = await cloud.client("ec2")
    try:
        resp = await ec2.describe_instance_types(InstanceTypes=[instance_type])
    except Exception as exc:  # noqa: BLE001
        if error_code(exc).startswith("InvalidInstanceType"):
            raise FormatError(
                f"{source}: instance type {instance_type!r} is not offered by this cloud "
                "(pick one listed by `aws ec2 describe-instance-types`, e.g. c5.large)"
            ) from None
        async with cloud_errors("DescribeInstanceTypes"):
            raise
    types = resp.get("InstanceTypes") or []
    if not types:
        raise FormatError(f"{source}: instance type {instance_type!r} is unknown to this cloud")
    return int(types[0]["VCpuInfo"]["DefaultVCpus"])


async def plan_start(
    spec_path: str | Path,
    *,
    archive: str | Path | None = None,
    cloud: Cloud,
    say: Say = _quiet,
    spec: SessionSpec | None = None,
    jobs: Sequence[jobscfg.JobLine] | None = None,
    keep_instance_on_failure: float | None = None,
) -> StartPlan:
    """Validate everything up front (all problems at once) and prepare the session archive.

    ``spec`` and ``jobs`` (from the TUI's compose screen) replace reading ``spec_path``; the job
    directory is then ``spec_path``'s directory (or the spec's job_dir relative to it).
    """
    from awsac_agent import archive as archmod

    spec_path = Path(spec_path)
    if archive is not None:
        archive = Path(archive)
        if not archive.is_file():
            raise FormatError(
                f"{archive}: session archive not found (give an existing .tar.bz2 with -a)"
            )
    if spec is not None:  # composed in the TUI: validate what we were given
        from .spec import validate_spec

        problems = validate_spec(spec, jobs, str(spec_path))
        if jobs is None:
            problems.append(f"{spec_path}: no jobs given (compose at least one job line)")
        if problems:
            raise FormatError(join_problems(problems), problems)
        lines = list(jobs or [])
    else:
        spec, lines = await asyncio.to_thread(_load_spec, spec_path, archive)
    tmpdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="awsac-start-"))
    note = None
    try:
        if spec.archive:
            src = spec_path.parent / spec.archive
            archive_name = src.name
            out = tmpdir / archive_name
            added = await asyncio.to_thread(archmod.add_agent_files, src, out)
            if added:
                note = f"the archive {src.name} lacked the agent's session files; added {', '.join(added)}"
        else:
            from .spec import job_dir_path

            archive_name = s3layout.DEFAULT_ARCHIVE_NAME
            out = tmpdir / archive_name
            await asyncio.to_thread(archmod.build_archive, job_dir_path(spec_path, spec), out)
        members = await asyncio.to_thread(_archive_members, out)
        problems = jobscfg.check_scripts_exist(lines, members, "jobs.cfg")
        n_jobs = jobscfg.n_jobs(lines)
        if spec.n_jobs is not None and spec.n_jobs != n_jobs:
            problems.append(
                f"{spec_path}: n_jobs = {spec.n_jobs} but jobs.cfg defines {n_jobs} jobs "
                "(fix n_jobs or jobs.cfg)"
            )
        if problems:
            raise FormatError(join_problems(problems), problems)
        vcpus = await _vcpus(cloud, spec.instance_type, str(spec_path))
        cpi = min(vcpus, spec.jobs_per_instance) if spec.jobs_per_instance else vcpus
        session_id = new_session_id(spec.shortdescr)
        extra = {"store": spec.status_store}
        if spec.max_job_minutes:
            extra["max_job_min"] = f"{spec.max_job_minutes:g}"
        if spec.max_session_hours:
            extra["lease_h"] = f"{spec.max_session_hours:g}"
        if keep_instance_on_failure:  # minutes a failed instance stays up for debugging
            extra["keep_fail_min"] = f"{keep_instance_on_failure:g}"
        userdata = UserData(session_id, spec.bucket, archive_name, cpi, extra)
        if spec.image_mode == "stock":
            # An unmodified image: a cloud-init script installs Python 3 + boto3 and runs the
            # boot step from the worker shipped in the session archive.
            ud = stock_userdata(userdata)
        else:
            ud = build_userdata(userdata)
        return StartPlan(
            spec=spec,
            spec_path=spec_path,
            job_lines=tuple(lines),
            archive_path=out,
            archive_name=archive_name,
            archive_note=note,
            vcpus=vcpus,
            cores_per_instance=cpi,
            n_jobs=n_jobs,
            n_instances=assignment.n_instances(n_jobs, cpi),
            unused_cores=assignment.unused_cores(n_jobs, cpi),
            session_id=session_id,
            userdata=ud,
            cloud=cloud.profile,
            tmpdir=tmpdir,
        )
    except BaseException:
        await _remove_tree(tmpdir)
        raise


async def _remove_tree(path: Path) -> None:
    """Remove a temporary directory (and the archive in it) off the event loop."""
    await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)


async def upload_file(
    cloud: Cloud, path: Path, bucket: str, key: str, progress: Progress | None = None
) -> None:
    """Upload ``path`` to s3://bucket/key (multipart above 8 MiB), reporting progress."""
    s3 = await cloud.client("s3")
    total = path.stat().st_size
    report = progress or (lambda d, t: None)
    report(0, total)
    if total <= PART_SIZE:
        data = await asyncio.to_thread(path.read_bytes)
        await s3.put_object(Bucket=bucket, Key=key, Body=data)
        report(total, total)
        return
    up = await s3.create_multipart_upload(Bucket=bucket, Key=key)
    parts = []
    done = 0
    try:
        with path.open("rb") as fh:
            n = 1
            while True:
                chunk = await asyncio.to_thread(fh.read, PART_SIZE)
                if not chunk:
                    break
                resp = await s3.upload_part(
                    Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=n, Body=chunk
                )
                parts.append({"ETag": resp["ETag"], "PartNumber": n})
                done += len(chunk)
                report(done, total)
                n += 1
        await s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=up["UploadId"], MultipartUpload={"Parts": parts}
        )
    except BaseException as exc:
        try:
            await s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=up["UploadId"])
        except Exception as abort_exc:  # noqa: BLE001 - reported with the upload's own error
            if isinstance(exc, Exception):
                raise CloudError(
                    f"uploading {path} to s3://{bucket}/{key} failed ({exc}), and its incomplete "
                    f"multipart upload could not be aborted ({abort_exc}); S3 keeps (and bills) "
                    f"its parts until you run `aws s3api abort-multipart-upload --bucket {bucket} "
                    f"--key {key} --upload-id {up['UploadId']}`"
                ) from exc
        raise


async def _ensure_bucket(cloud: Cloud, bucket: str) -> None:
    s3 = await cloud.client("s3")
    try:
        await s3.head_bucket(Bucket=bucket)
        return
    except Exception as exc:  # noqa: BLE001
        code = error_code(exc)
        if code in ("403", "AccessDenied", "Forbidden"):
            raise FormatError(
                f"bucket {bucket!r} belongs to another account or this account may not use it "
                "(bucket names are global: choose a bucket of your own in the spec's bucket)"
            ) from None
        if code not in ("404", "NoSuchBucket", "NotFound"):
            async with cloud_errors(f"bucket {bucket}"):
                raise
    if cloud.profile.local:
        await s3.create_bucket(Bucket=bucket)
        return
    raise FormatError(
        f"bucket {bucket!r} does not exist on {cloud.describe()} "
        f"(create it: `aws s3 mb s3://{bucket}`, or fix bucket in the spec)"
    )


async def check_image(cloud: Cloud, image_id: str, owner: str | None) -> dict[str, Any]:
    """The image's description; FormatError when it does not exist or has another owner."""
    ec2 = await cloud.client("ec2")
    try:
        resp = await ec2.describe_images(ImageIds=[image_id])
    except Exception as exc:  # noqa: BLE001
        if error_code(exc).startswith("InvalidAMIID"):
            resp = {"Images": []}
        else:
            async with cloud_errors(f"DescribeImages {image_id}"):
                raise
    images = resp.get("Images") or []
    if not images:
        raise FormatError(
            f"image {image_id!r} not found on {cloud.describe()} (fix image_id in the spec; "
            "for the local cloud see `awsac local status`)"
        )
    img = images[0]
    if owner and str(img.get("OwnerId")) != str(owner):
        raise FormatError(
            f"image {image_id!r} belongs to {img.get('OwnerId')}, not to the stated owner {owner} "
            "(fix image_owner / ec2_uid in the spec)"
        )
    return img


def _tags(session_id: str, spec: SessionSpec) -> list[dict[str, str]]:
    tags = {"Name": f"awsac {session_id}", **spec.tags, SESSION_TAG: session_id}
    return [{"Key": k, "Value": str(v)} for k, v in tags.items()]


def client_token(session_id: str) -> str:
    return f"awsac-{session_id}"[:64]


def _run_args(plan: StartPlan) -> dict[str, Any]:
    spec = plan.spec
    tags = _tags(plan.session_id, spec)
    kw: dict[str, Any] = {
        "ImageId": spec.image_id,
        "InstanceType": spec.instance_type,
        "MinCount": plan.n_instances,
        "MaxCount": plan.n_instances,
        "UserData": plan.userdata,
        "ClientToken": client_token(plan.session_id),
        "InstanceInitiatedShutdownBehavior": "terminate",
        "MetadataOptions": {
            "HttpTokens": "required",
            "HttpEndpoint": "enabled",
            "HttpPutResponseHopLimit": 2,
        },
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": tags},
        ],
    }
    if spec.key_name:
        kw["KeyName"] = spec.key_name
    if spec.security_groups:
        ids = [g for g in spec.security_groups if g.startswith("sg-")]
        names = [g for g in spec.security_groups if not g.startswith("sg-")]
        if ids:
            kw["SecurityGroupIds"] = ids
        if names:
            kw["SecurityGroups"] = names
    if spec.subnet_id:
        kw["SubnetId"] = spec.subnet_id
    if spec.availability_zone:
        kw["Placement"] = {"AvailabilityZone": spec.availability_zone}
    if spec.instance_profile:
        key = "Arn" if spec.instance_profile.startswith("arn:") else "Name"
        kw["IamInstanceProfile"] = {key: spec.instance_profile}
    if spec.spot:
        opts: dict[str, Any] = {
            "SpotInstanceType": "one-time",
            "InstanceInterruptionBehavior": "terminate",
        }
        if spec.spot_max_price:
            opts["MaxPrice"] = str(spec.spot_max_price)
        kw["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": opts}
    return kw


def _legacy_userdata(userdata: str) -> str:
    """The paper's user-data string, also when it travels inside a stock-image bootstrap script."""
    parsed = parse_userdata(userdata)
    return build_userdata(parsed) if parsed else ""


def _record_for(plan: StartPlan) -> SessionRecord:
    spec = plan.spec
    return SessionRecord(
        session_id=plan.session_id,
        state="starting",
        shortdescr=spec.shortdescr,
        bucket=spec.bucket,
        archive_name=plan.archive_name,
        instance_type=spec.instance_type,
        image_id=spec.image_id,
        image_owner=spec.image_owner,
        n_jobs=plan.n_jobs,
        n_instances=plan.n_instances,
        cores_per_instance=plan.cores_per_instance,
        unused_cores=plan.unused_cores,
        runuserdata=_legacy_userdata(plan.userdata),
        cloud=plan.cloud,
        status_store=spec.status_store,
        jobs=tuple(f"{jl.snapshot or '-'};{jl.script};{jl.count}" for jl in plan.job_lines),
        key_name=spec.key_name,
        ssh_user=spec.ssh_user,
        spec_path=str(plan.spec_path.resolve()),
    )


async def start(
    plan: StartPlan,
    cloud: Cloud,
    *,
    confirm: Confirm | None = None,
    progress: Progress | None = None,
    say: Say = _quiet,
) -> SessionRecord:
    """Create the session of ``plan``; any failure removes what this start created, and says so."""
    spec = plan.spec
    sid = plan.session_id
    record = await asyncio.to_thread(records.save_record, _record_for(plan))
    say(f"session id: {sid} (record {record.path})")
    created: dict[str, Any] = {"archive": False, "store": False, "run": False}
    try:
        await _ensure_bucket(cloud, spec.bucket)
        if plan.archive_note:
            say(plan.archive_note)
        key = s3layout.archive_key(sid, plan.archive_name)
        say(f"uploading session archive to s3://{spec.bucket}/{key}")
        created["archive"] = True
        async with cloud_errors(f"uploading s3://{spec.bucket}/{key}"):
            await upload_file(cloud, plan.archive_path, spec.bucket, key, progress)
        img = await check_image(cloud, spec.image_id, spec.image_owner)
        say(f"found image {spec.image_id!r} ({img.get('Name') or img.get('ImageLocation') or ''})")
        say(f"user-data: {plan.userdata}")
        store = _store(record, cloud)
        created["store"] = True
        existed = await store.reset()
        say(
            f"status store ({store.kind}) "
            + ("existed and was reset" if existed else "created")
            + f": {sid}"
        )
        question = (
            f"run exactly {plan.n_instances} instance(s) of image {spec.image_id} "
            f"(type {spec.instance_type!r}) with the user-data above. proceed?"
        )
        if not await _ask(confirm, question):
            raise SessionError("start cancelled: no instances were run")
        ec2 = await cloud.client("ec2")
        created["run"] = True
        async with cloud_errors("RunInstances"):
            resp = await ec2.run_instances(**_run_args(plan))
        rid = resp.get("ReservationId") or ""
        say(f"Request accepted. EC2 reservation ID: {rid}")
        record = await asyncio.to_thread(
            records.save_record, record.with_(reservation_id=rid, state="running")
        )
        return record
    except BaseException as exc:
        removed = await asyncio.shield(_undo_start(cloud, record, created))
        what = "; removed: " + ", ".join(removed) if removed else "; nothing had been created"
        if isinstance(exc, AwsacError):
            exc.args = (f"{exc.args[0] if exc.args else exc}{what}",)
            raise
        if isinstance(exc, Exception):
            raise SessionError(f"start of {sid} failed: {exc}{what}") from exc
        raise
    finally:
        if plan.tmpdir:
            await _remove_tree(plan.tmpdir)


async def _undo_start(cloud: Cloud, record: SessionRecord, created: dict[str, Any]) -> list[str]:
    """Remove what a failed start created; each part is tried even when an earlier one failed."""
    removed: list[str] = []
    problems: list[str] = []
    steps: list[tuple[str, Callable[[], Awaitable[list[str]]]]] = [
        ("run", lambda: cleanup(record, {"instances", "volumes"}, cloud=cloud)),
        ("store", lambda: _store(record, cloud).delete_all()),
        ("archive", lambda: _delete_objects(cloud, record, only_prefix=None)),
    ]
    for what, undo in steps:
        if not created[what]:
            continue
        try:
            removed += await undo()
        except Exception as exc:  # noqa: BLE001 - reported below; the record is kept
            problems.append(str(exc))
    if problems:
        await asyncio.to_thread(
            records.save_record, record.with_(state="failed", error="; ".join(problems))
        )
        removed.append(
            f"(could not remove everything: {'; '.join(problems)}; run `awsac cleanup {record.session_id}`)"
        )
    else:
        await asyncio.to_thread(records.delete_record, record)
        removed.append(f"session record {records.record_path(record.session_id)}")
    return removed


# ----------------------------------------------------------------------------- cloud views


async def _describe_tagged(
    cloud: Cloud, session_id: str, operation: str, pick: Callable[[dict[str, Any]], Iterable[Any]]
) -> list[dict[str, Any]]:
    """Every resource of a paginated EC2 Describe* call filtered by the session tag."""
    ec2 = await cloud.client("ec2")
    out: list[dict[str, Any]] = []
    async with cloud_errors(operation):
        pag = ec2.get_paginator(operation)
        async for page in pag.paginate(Filters=[session_tag_filter(session_id)]):
            out.extend(pick(page))
    return out


async def describe_instances(cloud: Cloud, session_id: str) -> list[dict[str, Any]]:
    """Every instance tagged with the session (paginated)."""
    return await _describe_tagged(
        cloud,
        session_id,
        "describe_instances",
        lambda page: (
            i for res in page.get("Reservations") or [] for i in res.get("Instances") or []
        ),
    )


async def describe_volumes(cloud: Cloud, session_id: str) -> list[dict[str, Any]]:
    """Every volume tagged with the session (paginated)."""
    return await _describe_tagged(
        cloud, session_id, "describe_volumes", lambda page: page.get("Volumes") or []
    )


# ----------------------------------------------------------------------------- check


async def check(
    record: SessionRecord, cloud: Cloud | None = None, **monitor_kw: Any
) -> SessionSnapshot:
    """One refresh of the session: a SessionSnapshot."""
    from .monitor import Monitor

    async with cloud_for(record, cloud) as c:
        return await Monitor(record, c, **monitor_kw).refresh()


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Download:
    key: str
    path: Path
    action: str  # saved | skipped | overwritten | kept
    size: int


def _md5_etag(path: Path, etag: str) -> str:
    if "-" not in etag:
        return hashlib.md5(path.read_bytes()).hexdigest()
    n = int(etag.split("-")[1])
    size = path.stat().st_size
    part = max(PART_SIZE, -(-size // n)) if n else PART_SIZE
    digests = []
    with path.open("rb") as fh:
        while chunk := fh.read(part):
            digests.append(hashlib.md5(chunk).digest())
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def _identical(path: Path, size: int, etag: str) -> bool:
    if not path.is_file() or path.stat().st_size != size:
        return False
    return _md5_etag(path, etag) == etag


async def list_objects(cloud: Cloud, bucket: str, prefix: str) -> list[tuple[str, str, int]]:
    from .store._control import list_keys

    async with cloud_errors(f"listing s3://{bucket}/{prefix}"):
        return await list_keys(cloud, bucket, prefix)


async def results(
    record: SessionRecord,
    outdir: str | Path,
    *,
    overwrite: bool = False,
    ask_overwrite: Confirm | None = None,
    progress: Progress | None = None,
    say: Say = _quiet,
    cloud: Cloud | None = None,
    concurrency: int = 8,
    include_bookkeeping: bool = False,
) -> list[Download]:
    """Download every object under the session prefix into ``OUTDIR/session-<id>/``."""
    outdir = Path(outdir)
    if not outdir.is_dir():
        raise FormatError(f"{outdir}: output directory does not exist (create it first)")
    target = outdir / f"session-{record.session_id}"
    if not target.exists():
        target.mkdir(mode=0o700)
        say(f"outputfolder created: {target}")
    async with cloud_for(record, cloud) as c:
        prefix = s3layout.prefix(record.session_id)
        listing = await list_objects(c, record.bucket, prefix)
        if not include_bookkeeping:
            listing = [
                o for o in listing if not o[0][len(prefix) :].startswith(BOOKKEEPING_PREFIXES)
            ]
        total = sum(s for _, _, s in listing)
        done = 0
        report = progress or (lambda d, t: None)
        report(0, total)
        s3 = await c.client("s3")
        sem = asyncio.Semaphore(concurrency)
        out: list[Download] = []

        async def one(key: str, etag: str, size: int) -> None:
            nonlocal done
            rel = key[len(prefix) :]
            path = target / rel
            if ".." in Path(rel).parts:
                return
            action = "saved"
            if path.exists():
                if await asyncio.to_thread(_identical, path, size, etag):
                    out.append(Download(key, path, "skipped", size))
                    done += size
                    report(done, total)
                    return
                if not overwrite and not await _ask(
                    ask_overwrite or (lambda q: False), f"overwrite {path}?"
                ):
                    out.append(Download(key, path, "kept", size))
                    return
                action = "overwritten"
            async with sem:
                async with cloud_errors(f"downloading s3://{record.bucket}/{key}"):
                    resp = await s3.get_object(Bucket=record.bucket, Key=key)
                    tmp, fh = await asyncio.to_thread(_open_part, path)
                    try:
                        async with resp["Body"] as body:
                            while chunk := await body.read(1024 * 1024):
                                await asyncio.to_thread(fh.write, chunk)
                                done += len(chunk)
                                report(done, total)
                        await asyncio.to_thread(_commit_part, fh, tmp, path)
                    except BaseException:
                        await asyncio.to_thread(_discard_part, fh, tmp)
                        raise
            out.append(Download(key, path, action, size))

        await asyncio.gather(*(one(k, e, s) for k, e, s in listing))
    out.sort(key=lambda d: d.key)
    for d in out:
        rel = d.key[len(prefix) :]
        extra = {"skipped": " (identical)", "kept": " (differs; use --overwrite to replace it)"}
        say(f"{d.action} {rel}{extra.get(d.action, '')}")
    return out


def _open_part(path: Path) -> tuple[Path, BinaryIO]:
    """Create ``path``'s directory and open its private ``.part`` file for writing."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return tmp, os.fdopen(fd, "wb")


def _commit_part(fh: BinaryIO, tmp: Path, path: Path) -> None:
    """Close a completed ``.part`` file and move it into place (mode 0600)."""
    fh.close()
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def _discard_part(fh: BinaryIO, tmp: Path) -> None:
    """Close and remove the ``.part`` file of a failed download (nothing half-written stays)."""
    fh.close()
    tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- cleanup

CLEANUP_KINDS = ("instances", "volumes", "store", "objects")


async def _delete_objects(
    cloud: Cloud, record: SessionRecord, only_prefix: str | None
) -> list[str]:
    from .store._control import delete_keys

    prefix = only_prefix or s3layout.prefix(record.session_id)
    keys = [k for k, _, _ in await list_objects(cloud, record.bucket, prefix)]
    async with cloud_errors(f"deleting s3://{record.bucket}/{prefix}"):
        done = await delete_keys(cloud, record.bucket, keys) if keys else []
    return [f"s3://{record.bucket}/{k}" for k in done]


async def _wait(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.5
    while not await predicate():
        if loop.time() > deadline:
            raise CloudError(
                f"timed out after {timeout:.0f} s waiting for {what}; run cleanup again"
            )
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 5.0)


GONE_STATES = ("shutting-down", "terminated")


async def cleanup(
    record: SessionRecord,
    kinds: Iterable[str] = CLEANUP_KINDS,
    *,
    confirm: Confirm | None = None,
    say: Say = _quiet,
    cloud: Cloud | None = None,
    timeout: float = 300.0,
) -> list[str]:
    """Remove what the session left (asking the cloud, not the record); returns each thing removed."""
    kinds = set(kinds)
    bad = kinds - set(CLEANUP_KINDS)
    if bad:
        raise FormatError(f"unknown cleanup kinds {sorted(bad)} (use {', '.join(CLEANUP_KINDS)})")
    removed: list[str] = []

    def note(text: str) -> None:
        removed.append(text)
        say(text)

    sid = record.session_id
    async with cloud_for(record, cloud) as c:
        ec2 = await c.client("ec2")
        if "instances" in kinds:
            live = [
                i for i in await describe_instances(c, sid) if i["State"]["Name"] != "terminated"
            ]
            ids = [i["InstanceId"] for i in live]
            if ids and await _ask(
                confirm, f"terminate {len(ids)} instance(s) of {sid} ({', '.join(ids)})?"
            ):
                async with cloud_errors("TerminateInstances"):
                    await ec2.terminate_instances(InstanceIds=ids)

                async def all_terminated() -> bool:
                    now = {
                        i["InstanceId"]: i["State"]["Name"]
                        for i in await describe_instances(c, sid)
                    }
                    return all(now.get(i, "terminated") == "terminated" for i in ids)

                await _wait(all_terminated, timeout, f"instances {', '.join(ids)} to terminate")
                for i in ids:
                    note(f"terminated instance {i}")
        if "volumes" in kinds:
            vols = [
                v
                for v in await describe_volumes(c, sid)
                if v["State"] not in ("deleted", "deleting")
            ]
            vids = [v["VolumeId"] for v in vols]
            if vids and await _ask(
                confirm, f"delete {len(vids)} volume(s) of {sid} ({', '.join(vids)})?"
            ):
                detach_problems: list[str] = []
                for v in vols:
                    if v.get("Attachments"):
                        try:
                            await ec2.detach_volume(VolumeId=v["VolumeId"], Force=True)
                        except Exception as exc:  # noqa: BLE001 - said, and named if the wait times out
                            code = error_code(exc)
                            if not code.startswith(("IncorrectState", "InvalidVolume.NotFound")):
                                problem = f"DetachVolume {v['VolumeId']}: {translate(exc)}"
                                detach_problems.append(problem)
                                say(problem)

                async def detached() -> bool:
                    now = {v["VolumeId"]: v for v in await describe_volumes(c, sid)}
                    return all(not now.get(x, {}).get("Attachments") for x in vids)

                await _wait(
                    detached,
                    timeout,
                    "volumes to detach"
                    + (f" ({'; '.join(detach_problems)})" if detach_problems else ""),
                )
                for vid in vids:
                    try:
                        await ec2.delete_volume(VolumeId=vid)
                    except Exception as exc:  # noqa: BLE001
                        if not error_code(exc).startswith("InvalidVolume.NotFound"):
                            async with cloud_errors(f"DeleteVolume {vid}"):
                                raise

                async def volumes_gone() -> bool:
                    now = await describe_volumes(c, sid)
                    return not [v for v in now if v["VolumeId"] in vids and v["State"] != "deleted"]

                await _wait(volumes_gone, timeout, "volumes to be deleted")
                for vid in vids:
                    note(f"deleted volume {vid}")
        if "store" in kinds:
            store = _store(record, c)
            if await store.exists() and await _ask(
                confirm, f"delete status store ({store.kind}) {sid}?"
            ):
                for item in await store.delete_all():
                    note(f"deleted {item}")
        if "objects" in kinds:
            prefix = s3layout.prefix(sid)
            keys = await list_objects(c, record.bucket, prefix)
            if keys and await _ask(confirm, f"delete S3 objects {record.bucket}/{prefix}* ?"):
                for item in await _delete_objects(c, record, None):
                    note(f"deleted {item}")
    if set(CLEANUP_KINDS) <= kinds and record.path and records.record_path(sid).exists():
        await asyncio.to_thread(records.save_record, record.with_(state="cleaned"))
    return removed


# ----------------------------------------------------------------------------- kill, terminate, logs


async def kill(
    record: SessionRecord,
    jobnr: int,
    *,
    wait: bool = False,
    timeout: float = 300.0,
    cloud: Cloud | None = None,
) -> str:
    """Request that job ``jobnr`` be killed; with ``wait``, until it is terminal. Returns its status."""
    if not 1 <= jobnr <= max(record.n_jobs, 1):
        raise FormatError(
            f"job {jobnr} does not exist in {record.session_id} (jobs 1..{record.n_jobs})"
        )
    async with cloud_for(record, cloud) as c:
        store = _store(record, c)
        await store.request_kill(jobnr)
        status = "kill requested"
        if wait:

            async def terminal() -> bool:
                nonlocal status
                rec = {r.jobnr: r for r in await store.read_all()}.get(jobnr)
                status = rec.status if rec else PENDING
                return status in TERMINAL

            await _wait(terminal, timeout, f"job {jobnr} to be killed")
        return status


async def terminate(record: SessionRecord, instance_id: str, *, cloud: Cloud | None = None) -> str:
    """Terminate one instance of the session; returns its new state."""
    async with cloud_for(record, cloud) as c:
        ids = {i["InstanceId"] for i in await describe_instances(c, record.session_id)}
        if instance_id not in ids:
            raise FormatError(f"instance {instance_id} is not part of session {record.session_id}")
        ec2 = await c.client("ec2")
        async with cloud_errors(f"TerminateInstances {instance_id}"):
            resp = await ec2.terminate_instances(InstanceIds=[instance_id])
        return resp["TerminatingInstances"][0]["CurrentState"]["Name"]


async def console_output(
    record: SessionRecord, instance_id: str, *, cloud: Cloud | None = None
) -> str:
    """The instance's console output (EC2 GetConsoleOutput), '' when there is none yet."""
    async with cloud_for(record, cloud) as c:
        ec2 = await c.client("ec2")
        async with cloud_errors(f"GetConsoleOutput {instance_id}"):
            try:
                resp = await ec2.get_console_output(InstanceId=instance_id, Latest=True)
            except Exception as exc:  # noqa: BLE001
                if error_code(exc) in ("InvalidParameterValue", "UnsupportedOperation"):
                    resp = await ec2.get_console_output(InstanceId=instance_id)
                else:
                    raise
        out = resp.get("Output") or ""
        if isinstance(out, bytes):
            out = out.decode("utf-8", "replace")
        if out and not any(ch in out for ch in " \n") and len(out) % 4 == 0:
            with contextlib.suppress(ValueError):
                out = base64.b64decode(out).decode("utf-8", "replace")
        return out


def _log_from_tar(data: bytes, jobnr: int) -> str:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        pick = next(
            (m for m in members if m.name.endswith(s3layout.stdouterr_log_name(jobnr))), None
        )
        pick = pick or next((m for m in members if m.name.endswith(".log")), None)
        if pick is None:
            return ""
        fh = tar.extractfile(pick)
        return fh.read().decode("utf-8", "replace") if fh else ""


async def _get(cloud: Cloud, bucket: str, key: str) -> bytes | None:
    s3 = await cloud.client("s3")
    try:
        resp = await s3.get_object(Bucket=bucket, Key=key)
    except Exception as exc:  # noqa: BLE001
        if error_code(exc) in ("NoSuchKey", "404"):
            return None
        async with cloud_errors(f"s3://{bucket}/{key}"):
            raise
    async with resp["Body"] as body:
        return await body.read()


async def job_log(
    record: SessionRecord, jobnr: int, *, cloud: Cloud | None = None
) -> tuple[str, bool]:
    """(text, is_live): the live tail while the job runs, the saved log after."""
    async with cloud_for(record, cloud) as c:
        recs = {r.jobnr: r for r in await _store(record, c).read_all()}
        rec = recs.get(jobnr)
        terminal = rec is not None and rec.status in TERMINAL
        if terminal:
            data = await _get(c, record.bucket, s3layout.stdouterr_key(record.session_id, jobnr))
            if data is not None:
                return await asyncio.to_thread(_log_from_tar, data, jobnr), False
        data = await _get(c, record.bucket, s3layout.live_log_key(record.session_id, jobnr))
        return (data or b"").decode("utf-8", "replace"), not terminal


async def ssh_command(
    record: SessionRecord, instance_id: str, *, cloud: Cloud | None = None
) -> list[str]:
    """The command that opens a shell on the instance (local cloud: ``awsac local shell``)."""
    if record.cloud.local:
        return ["awsac", "local", "shell", instance_id]
    async with cloud_for(record, cloud) as c:
        inst = next(
            (
                i
                for i in await describe_instances(c, record.session_id)
                if i["InstanceId"] == instance_id
            ),
            None,
        )
    if inst is None:
        raise FormatError(f"instance {instance_id} is not part of session {record.session_id}")
    host = inst.get("PublicDnsName") or inst.get("PublicIpAddress")
    if not host:
        raise SessionError(
            f"instance {instance_id} has no public DNS name or address (state {inst['State']['Name']})"
        )
    cmd = ["ssh"]
    if record.key_name:
        key = Path.home() / ".ssh" / f"{record.key_name}.pem"
        if key.exists():
            cmd += ["-i", str(key)]
    return cmd + [f"{record.ssh_user}@{host}"]


# ----------------------------------------------------------------------------- cost


@dataclass(frozen=True)
class CostEstimate:
    instance_type: str
    n_instances: int
    hours: float
    price_per_hour: float | None
    total: float | None
    region: str
    note: str = field(default="")


def estimate_cost(
    instance_type: str, n_instances: int, hours: float, region: str = "us-east-1"
) -> CostEstimate:
    """On-demand cost from the price table shipped in ``awsac_tui/data/prices.toml``."""
    table = tomllib.loads(
        (Path(__file__).parent / "data" / "prices.toml").read_text(encoding="utf-8")
    )
    prices = table.get("regions", {}).get(region) or table.get("regions", {}).get("us-east-1", {})
    price = prices.get(instance_type)
    note = "" if price is not None else f"no price for {instance_type} in the shipped table"
    total = round(price * n_instances * hours, 4) if price is not None else None
    return CostEstimate(instance_type, n_instances, hours, price, total, region, note)


# ----------------------------------------------------------------------------- compose choices


@dataclass(frozen=True)
class ComposeChoices:
    """What the account offers for composing a session; ``notes`` say which lists could not be read.

    ``snapshots``: (snapshot id, description, size GiB, start time ISO 8601 UTC), newest first;
    ``images``: (image id, name); ``instance_types``: (name, vCPUs, USD per hour or None).
    """

    snapshots: tuple[tuple[str, str, int, str], ...] = ()
    images: tuple[tuple[str, str], ...] = ()
    instance_types: tuple[tuple[str, int, float | None], ...] = ()
    key_pairs: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


async def compose_choices(cloud: Cloud) -> ComposeChoices:
    """The account's snapshots, images, priced instance types, key pairs and buckets, in parallel.

    Each list is read on its own: a call the account may not make (AccessDenied) or that fails
    leaves its list empty and adds a note; a refused ListBuckets is silent (buckets are optional).
    Snapshots made for images (an AMI's root disk) are left out: they are not job data.
    """
    from datetime import UTC

    from .cloud import CLOUD_EXCEPTIONS, CREDENTIAL_CODES

    table = tomllib.loads((Path(__file__).parent / "data" / "prices.toml").read_text("utf-8"))
    regions = table.get("regions", {})
    prices: dict[str, float] = regions.get(cloud.region or "") or regions.get("us-east-1", {})

    async def pages(service: str, operation: str, key: str, **kw: Any) -> list[dict[str, Any]]:
        client = await cloud.client(service)
        out: list[dict[str, Any]] = []
        async for page in client.get_paginator(operation).paginate(**kw):
            out.extend(page.get(key) or [])
        return out

    async def snapshots() -> tuple[tuple[str, str, int, str], ...]:
        found = await pages("ec2", "describe_snapshots", "Snapshots", OwnerIds=["self"])
        image_disk = ("Auto-created snapshot for AMI", "Created by CreateImage", "Copied for")
        found = [s for s in found if not (s.get("Description") or "").startswith(image_disk)]
        found.sort(key=lambda s: (s.get("StartTime") is not None, s.get("StartTime")), reverse=True)
        return tuple(
            (
                s["SnapshotId"],
                s.get("Description") or "",
                int(s.get("VolumeSize") or 0),
                s["StartTime"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                if s.get("StartTime")
                else "",
            )
            for s in found
        )

    async def images() -> tuple[tuple[str, str], ...]:
        found = await pages("ec2", "describe_images", "Images", Owners=["self"])
        return tuple(sorted((i["ImageId"], i.get("Name") or "") for i in found))

    async def instance_types() -> tuple[tuple[str, int, float | None], ...]:
        if not prices:
            return ()
        found = await pages(
            "ec2",
            "describe_instance_types",
            "InstanceTypes",
            Filters=[{"Name": "instance-type", "Values": sorted(prices)}],
        )
        vcpus = {t["InstanceType"]: int(t["VCpuInfo"]["DefaultVCpus"]) for t in found}
        return tuple(
            (name, vcpus[name], prices.get(name))
            for name in sorted(vcpus, key=lambda n: (prices.get(n, float("inf")), n))
        )

    async def key_pairs() -> tuple[str, ...]:
        ec2 = await cloud.client("ec2")
        resp = await ec2.describe_key_pairs()
        return tuple(sorted(k["KeyName"] for k in resp.get("KeyPairs") or [] if k.get("KeyName")))

    async def buckets() -> tuple[str, ...]:
        found = await pages("s3", "list_buckets", "Buckets")
        return tuple(sorted(b["Name"] for b in found))

    async def one(
        what: str, operation: str, fetch: Callable[[], Awaitable[tuple[Any, ...]]]
    ) -> tuple[tuple[Any, ...], str]:
        try:
            return await fetch(), ""
        except CLOUD_EXCEPTIONS as exc:
            code = error_code(exc)
            if code in CREDENTIAL_CODES:
                if operation == "ListBuckets":
                    return (), ""
                return (), f"{what}: this account may not call {operation} ({code})"
            return (), f"{what}: {operation} failed ({code or type(exc).__name__})"

    got = await asyncio.gather(
        one("snapshots", "DescribeSnapshots", snapshots),
        one("images", "DescribeImages", images),
        one("instance types", "DescribeInstanceTypes", instance_types),
        one("key pairs", "DescribeKeyPairs", key_pairs),
        one("buckets", "ListBuckets", buckets),
    )
    return ComposeChoices(*(g[0] for g in got), notes=tuple(g[1] for g in got if g[1]))
