"""The emulator's own cost at session sizes (issue 20): DescribeInstances, DescribeVolumes, Select.

    cd bench && python emulator_scale.py 1000 3000 10000

For each size (jobs; 8 per instance, as c5.2xlarge) it builds, with plain boto3 in a private local
cloud: the session's instances (really launched, held `pending` by a long boot delay so that no
process boots), one volume per instance, both tagged with the session as the agent tags them,
and one status record per job (12 attributes, batch puts). Then it times, median of 3, what a
refresh asks: DescribeInstances and DescribeVolumes filtered by the session tag (paged at 1,000)
and ``select * ... limit 2500`` over the domain (paged). Cost per returned item shows whether a
call grows linearly with what it returns. No assertion: it prints figures.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

from common import private_local_cloud

JOBS_PER_INSTANCE = 8
SESSION_TAG = "awsac:session"


def _client(info: Any, name: str) -> Any:
    import boto3
    import botocore.config

    from awsac_tui.local.service import client_env

    env = client_env(info)
    return boto3.session.Session().client(
        name,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=botocore.config.Config(read_timeout=600, retries={"total_max_attempts": 1}),
    )


def build(info: Any, sid: str, n_jobs: int) -> None:
    ec2, sdb = _client(info, "ec2"), _client(info, "sdb")
    n_instances = -(-n_jobs // JOBS_PER_INSTANCE)
    tags = [{"Key": SESSION_TAG, "Value": sid}, {"Key": "Name", "Value": f"awsac {sid}"}]
    launched = 0
    while launched < n_instances:
        count = min(100, n_instances - launched)
        ec2.run_instances(
            ImageId=info.image_id,
            MinCount=count,
            MaxCount=count,
            InstanceType="c5.2xlarge",
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
        launched += count
    for index in range(n_instances):
        ec2.create_volume(
            AvailabilityZone="us-east-1a",
            Size=1,
            TagSpecifications=[
                {
                    "ResourceType": "volume",
                    "Tags": [*tags, {"Key": "awsac:launch-index", "Value": str(index)}],
                }
            ],
        )
    sdb.create_domain(DomainName=sid)
    for start in range(1, n_jobs + 1, 25):
        items = []
        for n in range(start, min(start + 25, n_jobs + 1)):
            attrs = {
                "jobnr": str(n),
                "status": "running",
                "instance_id": "i-0123456789abcdef0",
                "launchindex": str((n - 1) // JOBS_PER_INSTANCE),
                "shellscript": "job.sh",
                "snapshot": "snap-0123456789abcdef0",
                "runstarttime": "2026-01-01T00:00:00Z",
                "runendtime": "",
                "returncode": "",
                "attempt": "1",
                "updated": "2026-01-01T00:00:00.000000Z",
                "error": "",
            }
            items.append(
                {
                    "Name": f"job{n}",
                    "Attributes": [
                        {"Name": k, "Value": v, "Replace": True} for k, v in attrs.items()
                    ],
                }
            )
        sdb.batch_put_attributes(DomainName=sid, Items=items)


def timed(call: Any, repeats: int = 3) -> tuple[float, int]:
    """(median seconds, items returned) of ``call``."""
    times, count = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        count = call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), count


def measure(info: Any, sid: str) -> dict[str, Any]:
    ec2, sdb = _client(info, "ec2"), _client(info, "sdb")
    tag_filter = [{"Name": f"tag:{SESSION_TAG}", "Values": [sid]}]

    def instances() -> int:
        pages = ec2.get_paginator("describe_instances").paginate(
            Filters=tag_filter, PaginationConfig={"PageSize": 1000}
        )
        return sum(len(r["Instances"]) for page in pages for r in page["Reservations"])

    def volumes() -> int:
        pages = ec2.get_paginator("describe_volumes").paginate(
            Filters=tag_filter, PaginationConfig={"PageSize": 1000}
        )
        return sum(len(page["Volumes"]) for page in pages)

    def select() -> int:
        pages = sdb.get_paginator("select").paginate(
            SelectExpression=f"select * from `{sid}` limit 2500", ConsistentRead=True
        )
        return sum(len(page.get("Items", [])) for page in pages)

    out: dict[str, Any] = {}
    for name, call in (
        ("DescribeInstances", instances),
        ("DescribeVolumes", volumes),
        ("Select", select),
    ):
        seconds, count = timed(call)
        out[name] = {
            "seconds": round(seconds, 3),
            "items": count,
            "ms_per_item": round(1000 * seconds / max(1, count), 3),
        }
    return out


def main(sizes: list[int]) -> None:
    results: dict[int, Any] = {}
    with private_local_cloud(boot_delay=24 * 3600) as (info, _state):  # nothing boots
        from awsac_tui.local import service

        for n_jobs in sizes:
            service.reset()  # each size alone in the emulator
            sid = f"261202_0000--scale{n_jobs}--beef"
            started = time.monotonic()
            build(info, sid, n_jobs)
            built = time.monotonic() - started
            results[n_jobs] = {"build_s": round(built, 1), **measure(info, sid)}
            print(json.dumps({n_jobs: results[n_jobs]}), flush=True)
    print()
    print(f"{'jobs':>7} {'call':<18} {'items':>6} {'seconds':>8} {'ms/item':>8}")
    for n_jobs, row in results.items():
        for call in ("DescribeInstances", "DescribeVolumes", "Select"):
            r = row[call]
            print(
                f"{n_jobs:>7} {call:<18} {r['items']:>6} {r['seconds']:>8.3f} {r['ms_per_item']:>8.3f}"
            )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 3000])
