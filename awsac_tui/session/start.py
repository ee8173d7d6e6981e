"""Start a planned session: upload the archive, check the image, reset the status store, write
the record, RunInstances; a failed start removes what it created."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from awsac_agent import jobscfg, s3checksum, s3layout
from awsac_agent.errors import AwsacError, CloudError, FormatError
from awsac_agent.sessionid import SESSION_TAG
from awsac_agent.status import PENDING, JobRecord
from awsac_agent.userdata import build_userdata, parse_userdata

from .. import records
from ..cloud import Cloud, cloud_errors, error_code
from ..records import SessionRecord
from ..resources import list_uploads
from ..spec import SessionSpec
from .cleanup import abort_uploads, cleanup, delete_objects, plan_cleanup
from .common import PART_SIZE, Confirm, Progress, Say, SessionError, ask, quiet, store_for
from .launch import Launched, launch, precheck
from .plan import Fleet, StartPlan, remove_tree


async def upload_file(
    cloud: Cloud, path: Path, bucket: str, key: str, progress: Progress | None = None
) -> None:
    """Upload ``path`` to s3://bucket/key (multipart above 8 MiB), reporting progress while it
    happens; S3 stores the whole-object CRC32 (``results`` compares downloads with it). A failed
    multipart upload is aborted (S3 would bill its parts)."""
    s3 = await cloud.client("s3")
    total = path.stat().st_size
    report = progress or (lambda d, t: None)
    report(0, total)
    if total <= PART_SIZE:
        data = await asyncio.to_thread(path.read_bytes)
        await s3.put_object(
            Bucket=bucket, Key=key, Body=data, ChecksumAlgorithm=s3checksum.ALGORITHM
        )
        report(total, total)
        return
    up = await s3.create_multipart_upload(
        Bucket=bucket,
        Key=key,
        ChecksumAlgorithm=s3checksum.ALGORITHM,
        ChecksumType=s3checksum.FULL_OBJECT,
    )
    parts = []
    done = 0
    crc = 0
    try:
        with path.open("rb") as fh:
            n = 1
            while True:
                chunk = await asyncio.to_thread(fh.read, PART_SIZE)
                if not chunk:
                    break
                crc = zlib.crc32(chunk, crc)
                resp = await s3.upload_part(
                    Bucket=bucket,
                    Key=key,
                    UploadId=up["UploadId"],
                    PartNumber=n,
                    Body=chunk,
                    ChecksumAlgorithm=s3checksum.ALGORITHM,
                )
                part = {"ETag": resp["ETag"], "PartNumber": n}
                if resp.get("ChecksumCRC32"):
                    part["ChecksumCRC32"] = resp["ChecksumCRC32"]
                parts.append(part)
                done += len(chunk)
                report(done, total)
                n += 1
        await s3.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=up["UploadId"],
            MultipartUpload={"Parts": parts},
            ChecksumType=s3checksum.FULL_OBJECT,
            ChecksumCRC32=s3checksum.crc32_text(crc),
        )
    except BaseException as exc:
        try:
            await asyncio.shield(
                s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=up["UploadId"])
            )
        except Exception as abort_exc:  # noqa: BLE001 - reported with the upload's own error
            if isinstance(exc, Exception):
                raise CloudError(
                    f"uploading {path} to s3://{bucket}/{key} failed ({exc}), and its incomplete "
                    f"multipart upload could not be aborted ({abort_exc}); S3 keeps (and bills) "
                    f"its parts until you run `aws s3api abort-multipart-upload --bucket {bucket} "
                    f"--key {key} --upload-id {up['UploadId']}` (or `awsac cleanup`)"
                ) from exc
        raise


async def _check_bucket(cloud: Cloud, bucket: str) -> bool:
    """Whether the bucket exists (and is ours); False only on the local cloud, where start
    creates it. Reads only: nothing is created before the user said yes."""
    s3 = await cloud.client("s3")
    try:
        await s3.head_bucket(Bucket=bucket)
        return True
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
        return False
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


def client_token(session_id: str, *, try_: int = 0, reservation: int = 1) -> str:
    """RunInstances' idempotency token: a repeated call returns the first call's reservation.
    Each fallback type (``try_``) and each retry reservation has its own."""
    token = f"awsac-{session_id}"
    if reservation > 1:
        token += f"-r{reservation}"
    if try_:
        token += f"-t{try_}"
    return token[:64]


def launch_template(run_args: dict[str, Any], got: Launched) -> dict[str, Any]:
    """What a later reservation of this session (a retry) launches with: the first one's
    arguments on the type that ran, without the per-call count, token and user-data."""
    keep = {k: v for k, v in run_args.items() if k not in ("MinCount", "MaxCount", "ClientToken")}
    keep["InstanceType"] = got.instance_type
    keep["UserData"] = got.userdata
    return keep


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
        assignment=spec.assignment,
        max_attempts=spec.max_attempts,
        retry_failed=spec.retry_failed,
        jobs_per_instance=spec.jobs_per_instance,
        max_instances=spec.max_instances,
        max_vcpus=spec.max_vcpus,
    )


async def start(
    plan: StartPlan,
    cloud: Cloud,
    *,
    confirm: Confirm | None = None,
    progress: Progress | None = None,
    say: Say = quiet,
) -> SessionRecord:
    """Create the session of ``plan``. Everything that only reads (bucket, image) and the
    question come first, so a "no" leaves nothing at all; then the record (before anything is
    created in the cloud), the archive upload, the status store, RunInstances. Any failure
    removes what this start created, and says so."""
    spec = plan.spec
    sid = plan.session_id
    try:
        bucket_exists = await _check_bucket(cloud, spec.bucket)
        img = await check_image(cloud, spec.image_id, spec.image_owner)
        say(f"found image {spec.image_id!r} ({img.get('Name') or img.get('ImageLocation') or ''})")
        say(f"user-data: {plan.userdata}")
        fleet = Fleet.of(spec, plan.n_jobs)
        types = (spec.instance_type, *spec.instance_types)
        quota = await precheck(cloud, types, fleet)
        if quota is not None:
            say(f"the account's quota: {quota.text()}")
        question = (
            f"upload the session archive and run exactly {plan.n_instances} instance(s) of "
            f"image {spec.image_id} (type {spec.instance_type!r}) with the user-data above. "
            "proceed?"
        )
        if not await ask(confirm, question):
            raise SessionError("start cancelled: nothing was created")
    except BaseException:
        if plan.tmpdir:
            await remove_tree(plan.tmpdir)
        raise
    record = await asyncio.to_thread(records.save_record, _record_for(plan))
    say(f"session id: {sid} (record {record.path})")
    created: dict[str, Any] = {"archive": False, "store": False, "run": False}
    try:
        if not bucket_exists:
            s3 = await cloud.client("s3")
            async with cloud_errors(f"CreateBucket {spec.bucket}"):
                await s3.create_bucket(Bucket=spec.bucket)
        if plan.archive_note:
            say(plan.archive_note)
        key = s3layout.archive_key(sid, plan.archive_name)
        say(f"uploading session archive to s3://{spec.bucket}/{key}")
        created["archive"] = True
        async with cloud_errors(f"uploading s3://{spec.bucket}/{key}"):
            await upload_file(cloud, plan.archive_path, spec.bucket, key, progress)
        store = store_for(record, cloud)
        created["store"] = True
        existed = await store.reset()
        say(
            f"status store ({store.kind}) "
            + ("existed and was reset" if existed else "created")
            + f": {sid}"
        )
        # every job's record exists before any agent runs (pending, attempt 1): queue agents
        # claim these, and a static agent's first write is its job's start
        await store.put_pending(pending_records(plan.job_lines))
        say(f"created {plan.n_jobs} pending job record(s)")
        created["run"] = True
        got = await launch(
            cloud,
            _run_args(plan),
            types=types,
            token=lambda i: client_token(sid, try_=i),
            say=say,
            quota=quota,
            read_the_quota=False,
            fleet=fleet,
        )
        say(f"Request accepted. EC2 reservation ID: {got.reservation_id}")
        if got.instance_type != spec.instance_type:
            say(
                f"running on the fallback type {got.instance_type} ({got.cores_per_instance} "
                f"core(s) per instance, {got.n_instances} instance(s))"
            )
        record = await asyncio.to_thread(
            records.save_record,
            record.with_(
                reservation_id=got.reservation_id,
                state="running",
                instance_type=got.instance_type,
                n_instances=got.n_instances,
                cores_per_instance=got.cores_per_instance,
                unused_cores=max(0, got.n_instances * got.cores_per_instance - plan.n_jobs),
                runuserdata=_legacy_userdata(got.userdata),
                launch=launch_template(_run_args(plan), got),
                reservations=1,
            ),
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
            await remove_tree(plan.tmpdir)


def pending_records(lines: Sequence[jobscfg.JobLine]) -> list[JobRecord]:
    """The first record of every job of jobs.cfg."""
    return [
        JobRecord(j.jobnr, PENDING, shellscript=j.script, snapshot=j.snapshot)
        for j in jobscfg.expand_jobs(lines)
    ]


async def _undo_start(cloud: Cloud, record: SessionRecord, created: dict[str, Any]) -> list[str]:
    """Remove what a failed start created; each part is tried even when an earlier one failed."""
    removed: list[str] = []
    problems: list[str] = []

    async def instances_and_volumes() -> list[str]:
        plan = await plan_cleanup(record, {"instances", "volumes"}, cloud=cloud)
        done = await cleanup(
            record, {"instances", "volumes"}, kill_running=True, cloud=cloud, plan=plan
        )
        return done.removed

    async def archive() -> list[str]:
        prefix = s3layout.prefix(record.session_id)
        uploads = await list_uploads(cloud, record.bucket, prefix)
        return await abort_uploads(cloud, record.bucket, uploads) + await delete_objects(
            cloud, record, only_prefix=None
        )

    steps: list[tuple[str, Callable[[], Awaitable[list[str]]]]] = [
        ("run", instances_and_volumes),
        ("store", lambda: store_for(record, cloud).delete_all()),
        ("archive", archive),
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
