"""What the local cloud's persistence costs: ``up`` with and without saved state, writes, disk.

A private local cloud (fresh state dir) is filled with the state of a busy user (one bucket of
small logs plus some results, status domains, terminated instances with their volumes gone,
snapshots, key pairs), then stopped and started (``down``/``up``) and killed and started
(``kill -9``/``up``). Prints one JSON object. ``python bench/local_state.py [SCALE]``; SCALE 1 is
2,000 objects, 20 domains of 100 items and 100 instance records.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "agent"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def _clients(info: Any) -> Any:
    import boto3

    def make(name: str) -> Any:
        return boto3.session.Session().client(
            name,
            endpoint_url=info.endpoint,
            region_name=info.region,
            aws_access_key_id="x",
            aws_secret_access_key="y",
        )

    return make


def _timed(calls: list[Any]) -> float:
    """Median seconds of the calls."""
    took = []
    for call in calls:
        started = time.perf_counter()
        call()
        took.append(time.perf_counter() - started)
    return statistics.median(took)


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(scale: float = 1.0) -> dict[str, Any]:
    from awsac_tui.local import service

    state = Path(tempfile.mkdtemp(prefix="awsac-bench-state-"))
    os.environ["AWSAC_STATE_DIR"] = str(state)
    out: dict[str, Any] = {"scale": scale}
    try:
        started = time.monotonic()
        info = service.ensure_up(boot_delay=0, boot_command=["true"])
        out["up_fresh_s"] = round(time.monotonic() - started, 2)
        out["start_fresh_cpu_s"] = info.state.get("cpu_seconds")
        make = _clients(info)
        s3, sdb, ec2 = make("s3"), make("sdb"), make("ec2")
        bucket = "awsac-bench-state"
        s3.create_bucket(Bucket=bucket)
        n_objects, n_domains, n_instances = int(2000 * scale), int(20 * scale), int(100 * scale)
        small = b"x" * 1024
        for n in range(n_objects):
            s3.put_object(Bucket=bucket, Key=f"sid{n % 20}/live/job_{n}.log", Body=small)
        big = os.urandom(10 * 2**20)
        for n in range(5):
            s3.put_object(Bucket=bucket, Key=f"results/results_job_{n}.tar.bz2", Body=big)
        for d in range(n_domains):
            domain = f"bench-domain-{d}"
            sdb.create_domain(DomainName=domain)
            for first in range(0, 100, 25):
                sdb.batch_put_attributes(
                    DomainName=domain,
                    Items=[
                        {
                            "Name": f"job{j}",
                            "Attributes": [
                                {"Name": f"a{a}", "Value": f"value {a} of job {j}"}
                                for a in range(12)
                            ],
                        }
                        for j in range(first, first + 25)
                    ],
                )
        for k in range(5):
            ec2.create_key_pair(KeyName=f"bench-{k}")
        ids: list[str] = []
        while len(ids) < n_instances:
            count = min(50, n_instances - len(ids))
            run = ec2.run_instances(ImageId=info.image_id, MinCount=count, MaxCount=count)
            ids += [i["InstanceId"] for i in run["Instances"]]
        ec2.terminate_instances(InstanceIds=ids)
        out["filled"] = {
            "objects": n_objects + 5,
            "object_mib": round((n_objects * 1024 + 5 * len(big)) / 2**20, 1),
            "domains": n_domains,
            "items": n_domains * 100,
            "instance_records": n_instances,
        }
        # one write of each kind on the filled cloud: the request waits for its change on disk
        out["median_write_s"] = {
            "PutObject_1KiB": round(
                _timed(
                    [
                        lambda n=n: s3.put_object(Bucket=bucket, Key=f"w/{n}", Body=small)
                        for n in range(50)
                    ]
                ),
                4,
            ),
            "PutAttributes": round(
                _timed(
                    [
                        lambda n=n: sdb.put_attributes(
                            DomainName="bench-domain-0",
                            ItemName="job1",
                            Attributes=[{"Name": "status", "Value": f"s{n}", "Replace": True}],
                        )
                        for n in range(50)
                    ]
                ),
                4,
            ),
            "CreateTags": round(
                _timed(
                    [
                        lambda n=n: ec2.create_tags(
                            Resources=[ids[0]], Tags=[{"Key": "n", "Value": str(n)}]
                        )
                        for n in range(20)
                    ]
                ),
                4,
            ),
        }
        # reads of the same services, which write nothing: the request's cost without the save
        out["median_read_s"] = {
            "HeadObject": round(
                _timed([lambda: s3.head_object(Bucket=bucket, Key="w/1") for _ in range(50)]), 4
            ),
            "GetAttributes": round(
                _timed(
                    [
                        lambda: sdb.get_attributes(DomainName="bench-domain-0", ItemName="job1")
                        for _ in range(50)
                    ]
                ),
                4,
            ),
            "DescribeKeyPairs": round(
                _timed([lambda: ec2.describe_key_pairs() for _ in range(20)]), 4
            ),
        }
        out["state_on_disk_mib"] = round(_du(state / "local" / "state") / 2**20, 1)

        service.down()
        started = time.monotonic()
        info = service.ensure_up()
        out["up_after_down_s"] = round(time.monotonic() - started, 2)
        out["restore_after_down_s"] = info.state.get("seconds")
        out["restore_after_down_cpu_s"] = info.state.get("cpu_seconds")

        os.kill(info.pid, signal.SIGKILL)
        while service.running_info() is not None:
            time.sleep(0.05)
        started = time.monotonic()
        info = service.ensure_up()
        out["up_after_kill_s"] = round(time.monotonic() - started, 2)
        out["restore_after_kill_s"] = info.state.get("seconds")
        out["restore_after_kill_cpu_s"] = info.state.get("cpu_seconds")
        out["restored"] = {k: info.state.get(k) for k in ("objects", "domains", "items")}
    finally:
        service.down()
        from awsac_tui.local.common import remove_tree

        remove_tree(state)
    return out


if __name__ == "__main__":
    print(json.dumps(main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0), indent=2))
