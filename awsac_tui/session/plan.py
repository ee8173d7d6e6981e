"""Plan a start: validate the spec and jobs (all problems at once), size the session from the
instance type, build the session archive and the user-data. Nothing is created in the cloud."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from awsac_agent import archive as archmod
from awsac_agent import assignment, jobscfg, s3layout
from awsac_agent.bootstrap import stock_userdata
from awsac_agent.errors import FormatError, join_problems
from awsac_agent.sessionid import new_session_id
from awsac_agent.userdata import UserData, build_userdata
from awsac_agent.userdata import extras as userdata_extras

from .. import records
from .. import spec as specmod
from ..cloud import Cloud, cloud_errors, error_code
from ..spec import CloudProfile, SessionSpec
from .common import Progress, Say, quiet


@dataclass(frozen=True)
class Fleet:
    """How many instances a session asks for: the paper's rule (static) or the queue's cap."""

    n_jobs: int
    queue: bool = False
    jobs_per_instance: int | None = None
    max_instances: int | None = None
    max_vcpus: int | None = None

    @classmethod
    def of(cls, spec: SessionSpec, n_jobs: int) -> Fleet:
        return cls(
            n_jobs,
            spec.assignment == assignment.QUEUE,
            spec.jobs_per_instance,
            spec.max_instances,
            spec.max_vcpus,
        )

    def size(self, vcpus: int) -> tuple[int, int]:
        """(instances, cores per instance) on a type of ``vcpus`` vCPUs."""
        cpi = min(vcpus, self.jobs_per_instance) if self.jobs_per_instance else vcpus
        if self.queue:
            n = assignment.queue_instances(
                self.n_jobs, cpi, self.max_instances, self.max_vcpus, vcpus
            )
            return n, cpi
        return assignment.n_instances(self.n_jobs, cpi), cpi


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

    def discard(self) -> None:
        """Remove the plan's scratch files (the built archive): for a plan that is not started
        (``start`` removes them itself)."""
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def summary(self) -> str:
        if self.spec.assignment == assignment.QUEUE:
            cores = self.n_instances * self.cores_per_instance
            text = (
                f"queue: {self.n_jobs} job(s) on {self.n_instances} x {self.spec.instance_type} "
                f"({cores} core(s)); each core claims the next pending job"
            )
            if self.spec.job_minutes:
                hours = -(-self.n_jobs // cores) * self.spec.job_minutes / 60
                text += f", about {hours:.2g} h at {self.spec.job_minutes:g} min a job"
            return text + "."
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


async def instance_vcpus(cloud: Cloud, instance_type: str, source: str) -> int:
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


def _snapshot_fix(cloud: Cloud) -> str:
    if cloud.profile.local:
        return "make one with `awsac local snapshot DIR`, or pick one the cloud has"
    return (
        "make one from a volume with `aws ec2 create-snapshot`, or pick one this account may "
        "use (`aws ec2 describe-snapshots --owner-ids self`)"
    )


async def check_references(
    cloud: Cloud,
    spec: SessionSpec,
    lines: Sequence[jobscfg.JobLine],
    *,
    spec_source: str = "session.toml",
    jobs_source: str = "jobs.cfg",
) -> list[str]:
    """Problems with the image and the snapshots the session names: each must exist on
    ``cloud``. One DescribeImages and one DescribeSnapshots call (filtered by id, so a missing
    id is an empty answer, not an error). Creates nothing. Each problem names the line to fix.
    """
    problems: list[str] = []
    ec2 = await cloud.client("ec2")
    where = cloud.describe()
    if spec.image_id and specmod.check_image_id(spec.image_id) is None:
        async with cloud_errors(f"DescribeImages {spec.image_id}"):
            resp = await ec2.describe_images(
                Filters=[{"Name": "image-id", "Values": [spec.image_id]}]
            )
        if not resp.get("Images"):
            fix = "pick one of the cloud's images"
            if cloud.profile.local and getattr(cloud.local_info, "image_id", None):
                fix = f"the local cloud's image is {cloud.local_info.image_id}"
            problems.append(
                f"{spec_source}: image_id {spec.image_id!r} does not exist on {where} ({fix})"
            )
    wanted = [s for s in jobscfg.snapshots(lines) if jobscfg.SNAPSHOT_RE.match(s)]
    if wanted:
        found: set[str] = set()
        async with cloud_errors("DescribeSnapshots"):
            pager = ec2.get_paginator("describe_snapshots")
            async for page in pager.paginate(Filters=[{"Name": "snapshot-id", "Values": wanted}]):
                found.update(str(s.get("SnapshotId")) for s in page.get("Snapshots") or [])
        for jl in lines:
            if jl.snapshot and jl.snapshot in wanted and jl.snapshot not in found:
                at = f"{jobs_source}, line {jl.lineno}" if jl.lineno else jobs_source
                problems.append(
                    f"{at}: snapshot {jl.snapshot} does not exist on {where} "
                    f"({_snapshot_fix(cloud)})"
                )
    return problems


async def plan_start(
    spec_path: str | Path,
    *,
    archive: str | Path | None = None,
    cloud: Cloud,
    say: Say = quiet,
    spec: SessionSpec | None = None,
    jobs: Sequence[jobscfg.JobLine] | None = None,
    keep_instance_on_failure: float | None = None,
    progress: Progress | None = None,
) -> StartPlan:
    """Validate everything up front (all problems at once) and prepare the session archive.

    ``spec`` and ``jobs`` (from the TUI's compose screen) replace reading ``spec_path``; the job
    directory is then ``spec_path``'s directory (or the spec's job_dir relative to it).
    The archive is built in a scratch directory beside the session records (swept at the next
    run if this one is killed); ``progress`` gets (bytes read, total) while it is built.
    """
    spec_path = Path(spec_path)
    if archive is not None:
        archive = Path(archive)
        if not archive.is_file():
            raise FormatError(
                f"{archive}: session archive not found (give an existing .tar.bz2 with -a)"
            )
    if spec is not None:  # composed in the TUI: validate what we were given
        problems = specmod.validate_spec(spec, jobs, str(spec_path))
        if jobs is None:
            problems.append(f"{spec_path}: no jobs given (compose at least one job line)")
        if problems:
            raise FormatError(join_problems(problems), problems)
        lines = list(jobs or [])
    else:
        spec, lines = await asyncio.to_thread(_load_spec, spec_path, archive)
    await asyncio.to_thread(records.sweep_scratch)
    tmpdir = await asyncio.to_thread(records.new_scratch, "start")
    note = None
    try:
        if spec.archive:
            src = spec_path.parent / spec.archive
            archive_name = src.name
            out = tmpdir / archive_name
            added = await asyncio.to_thread(
                archmod.add_agent_files, src, out, include=spec.include, progress=progress
            )
            if added:
                note = f"the archive {src.name} lacked the agent's session files; added {', '.join(added)}"
        else:
            archive_name = s3layout.DEFAULT_ARCHIVE_NAME
            out = tmpdir / archive_name
            await asyncio.to_thread(
                archmod.build_archive,
                specmod.job_dir_path(spec_path, spec),
                out,
                include=spec.include,
                progress=progress,
            )
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
        vcpus = await instance_vcpus(cloud, spec.instance_type, str(spec_path))
        problems = await check_references(
            cloud,
            spec,
            lines,
            spec_source=str(spec_path),
            jobs_source=str(spec_path.parent / spec.jobs_cfg),
        )
        if problems:
            raise FormatError(join_problems(problems), problems)
        queue = spec.assignment == assignment.QUEUE
        n_instances, cpi = Fleet.of(spec, n_jobs).size(vcpus)
        if n_instances < 1:
            raise FormatError(
                f"{spec_path}: max_vcpus = {spec.max_vcpus} is less than one "
                f"{spec.instance_type} ({vcpus} vCPUs); raise max_vcpus or pick a smaller type"
            )
        session_id = new_session_id(spec.shortdescr)
        extra = userdata_extras(
            store=spec.status_store,
            max_job_min=spec.max_job_minutes,
            lease_h=spec.max_session_hours,
            keep_fail_min=keep_instance_on_failure,  # minutes a failed instance stays up
            assignment=spec.assignment,
            max_attempts=spec.max_attempts if queue else None,
            spot=spec.spot,
            instances=n_instances,
        )
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
            n_instances=n_instances,
            unused_cores=max(0, n_instances * cpi - n_jobs),
            session_id=session_id,
            userdata=ud,
            cloud=cloud.profile,
            tmpdir=tmpdir,
        )
    except BaseException:
        await remove_tree(tmpdir)
        raise


async def remove_tree(path: Path) -> None:
    """Remove a temporary directory (and the archive in it) off the event loop."""
    await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
