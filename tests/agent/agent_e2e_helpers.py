"""Helpers of the agent's end-to-end tests: build a session by hand, run it on the local cloud."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from awsac_agent import s3layout
from awsac_agent.archive import build_archive
from awsac_agent.jobscfg import expand_jobs, parse_jobs_cfg
from awsac_agent.sessionid import SESSION_TAG, new_session_id, session_tag_filter
from awsac_agent.status import PENDING, JobRecord, watch_body
from awsac_agent.store import S3Store, SimpleDbStore, request_kill_object
from awsac_agent.userdata import UserData, build_userdata
from fast_autorun import fast_autorun
from polling import wait_for

EVENTGEN = Path(__file__).resolve().parents[2] / "examples" / "eventgen"


@dataclass
class Session:
    """A session started by hand on the local cloud, and what it left behind."""

    session_id: str
    bucket: str
    store_kind: str
    instance_ids: list[str]
    clients: Callable[[str], Any]
    records: list[JobRecord] = field(default_factory=list)

    @property
    def s3(self) -> Any:
        return self.clients("s3")

    @property
    def ec2(self) -> Any:
        return self.clients("ec2")

    def store(self) -> SimpleDbStore | S3Store:
        if self.store_kind == "s3":
            return S3Store(self.s3, self.bucket, self.session_id)
        return SimpleDbStore(self.clients("sdb"), self.session_id)

    def kill(self, jobnr: int) -> None:
        """A kill request as the client sends it: the store's record and the control/ object."""
        if self.store_kind == "simpledb":
            self.store().request_kill(jobnr)
        request_kill_object(self.s3, self.bucket, self.session_id, jobnr)

    def watch(self, jobnr: int) -> None:
        """Set job ``jobnr``'s live-log watch flag, as the log view does."""
        self.s3.put_object(
            Bucket=self.bucket,
            Key=s3layout.watch_key(self.session_id, jobnr),
            Body=watch_body().encode(),
        )

    def instance_states(self) -> dict[str, str]:
        out = {}
        resp = self.ec2.describe_instances(InstanceIds=self.instance_ids)
        for r in resp["Reservations"]:
            for i in r["Instances"]:
                out[i["InstanceId"]] = i["State"]["Name"]
        return out

    def wait_terminated(self, timeout: float = 150.0) -> None:
        wait_for(
            lambda: all(s == "terminated" for s in self.instance_states().values()),
            timeout,
            f"instances {self.instance_ids} to terminate",
            every=0.5,
        )
        self.records = self.store().read_all()

    def keys(self) -> set[str]:
        out: set[str] = set()
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.session_id + "/"
        ):
            out.update(o["Key"][len(self.session_id) + 1 :] for o in page.get("Contents", []))
        return out

    def record(self, jobnr: int) -> JobRecord:
        return next(r for r in self.records if r.jobnr == jobnr)

    def session_volumes(self) -> list[dict[str, Any]]:
        vols = self.ec2.describe_volumes(Filters=[session_tag_filter(self.session_id)])["Volumes"]
        return [v for v in vols if v["State"] != "deleted"]

    def object_text(self, key: str) -> str:
        return (
            self.s3.get_object(Bucket=self.bucket, Key=f"{self.session_id}/{key}")["Body"]
            .read()
            .decode()
        )

    def tar_member(self, key: str, member: str) -> str:
        data = self.s3.get_object(Bucket=self.bucket, Key=f"{self.session_id}/{key}")["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:bz2") as tar:
            f = tar.extractfile(member)
            assert f is not None
            return f.read().decode()

    def console(self, instance_id: str) -> str:
        import base64

        out = self.ec2.get_console_output(InstanceId=instance_id).get("Output") or ""
        try:
            return base64.b64decode(out, validate=True).decode("utf-8", errors="replace")
        except ValueError:
            return out


def start_session(
    tmp: Path,
    clients: Callable[[str], Any],
    image_id: str,
    jobs_cfg: str,
    scripts: dict[str, str],
    *,
    n_instances: int,
    cores: int,
    store: str = "simpledb",
    autorun_extra: str | None = None,
    extra_userdata: dict[str, str] | None = None,
    archive: Path | None = None,
    pending: bool = False,
    session_id: str | None = None,
) -> Session:
    """Build the session archive, upload it and run ``n_instances`` instances (the client's start).

    ``pending``: also create the domain and a pending record for every job first, as the
    client's start does (queue mode needs them). ``session_id``: a further reservation of that
    session (its archive is there already).
    """
    sid = session_id or new_session_id("agtest")
    bucket = "awsac-agent-tests"
    s3 = clients("s3")
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    if session_id is None:
        if archive is None:
            job_dir = tmp / "job"
            job_dir.mkdir()
            (job_dir / "jobs.cfg").write_text(jobs_cfg)
            for name, body in scripts.items():
                (job_dir / name).write_text(body)
            if autorun_extra is not None:
                (job_dir / "awsac_all_instances_autorun.sh").write_text(fast_autorun(autorun_extra))
            archive = tmp / "sessionarchive.tar.bz2"
            build_archive(job_dir, archive)
        s3.upload_file(str(archive), bucket, s3layout.archive_key(sid, "sessionarchive.tar.bz2"))
    if pending:
        records = [
            JobRecord(j.jobnr, PENDING, shellscript=j.script, snapshot=j.snapshot)
            for j in expand_jobs(parse_jobs_cfg(jobs_cfg))
        ]
        if store == "simpledb":
            sdb = SimpleDbStore(clients("sdb"), sid)
            sdb.ensure()
            sdb.put_many(records)
        else:
            S3Store(s3, bucket, sid).put_many(records)
    extra = {"store": store}
    extra.update(extra_userdata or {})
    ud = build_userdata(UserData(sid, bucket, "sessionarchive.tar.bz2", cores, extra))
    resp = clients("ec2").run_instances(
        ImageId=image_id,
        MinCount=n_instances,
        MaxCount=n_instances,
        InstanceType="c1.medium",
        UserData=ud,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": SESSION_TAG, "Value": sid}]}
        ],
    )
    ids = [i["InstanceId"] for i in resp["Instances"]]
    return Session(sid, bucket, store, ids, clients)
