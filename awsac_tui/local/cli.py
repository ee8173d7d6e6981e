"""``awsac local ...``: start, stop, inspect and use the local cloud from a shell."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from awsac_agent.errors import AwsacError

from awsac_tui.local import service
from awsac_tui.local.common import instance_environment


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="awsac local",
        description="The local cloud: EC2, S3 and SimpleDB emulated on this machine, "
        "with instances that run as local processes.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = sub.add_parser("up", help="start the local cloud (a second up finds the running one)")
    up.add_argument(
        "--boot-delay",
        type=float,
        default=None,
        help="seconds an instance stays pending before it boots (default 1)",
    )
    up.add_argument(
        "--vm",
        action="store_true",
        help="instances are QEMU virtual machines of the images (builds them first if needed)",
    )
    up.add_argument(
        "--vcpu-quota",
        type=int,
        default=None,
        metavar="N",
        help="On-Demand vCPU quota: RunInstances over it fails with VcpuLimitExceeded",
    )
    up.add_argument(
        "--instance-limit",
        type=int,
        default=None,
        metavar="N",
        help="instances at once: RunInstances over it fails with InstanceLimitExceeded",
    )
    up.add_argument(
        "--capacity",
        action="append",
        default=None,
        metavar="TYPE=N",
        help="at most N instances of TYPE at once (InsufficientInstanceCapacity); repeatable",
    )
    up.add_argument(
        "--ebs-delay",
        type=float,
        default=None,
        metavar="S",
        help="seconds new volumes stay creating and snapshots pending (default 0.2)",
    )
    img = sub.add_parser("image", help="the VM images of `up --vm` (build, show)")
    img.add_argument("action", choices=("build", "show"), help="build (when out of date), show")
    img.add_argument("--force", action="store_true", help="build again even when up to date")
    sub.add_parser("down", help="stop the local cloud and every instance process")
    status = sub.add_parser("status", help="endpoint, instances, volumes, snapshots, domains")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    sub.add_parser("env", help="print export lines that point the AWS CLI/boto3 at it")
    sub.add_parser(
        "reset",
        help="forget every instance, volume, snapshot, bucket and domain (the only thing that does)",
    )
    snap = sub.add_parser("snapshot", help="make a snapshot holding DIR's content")
    snap.add_argument("directory", metavar="DIR", type=Path)
    snap.add_argument("--description", default="", metavar="TEXT")
    snap.add_argument("--json", action="store_true", help='print {"snapshot_id": ...}')
    interrupt = sub.add_parser(
        "interrupt",
        help="a spot interruption: the notice on the instance's metadata, then EC2's reclaim",
    )
    interrupt.add_argument("instance", metavar="INSTANCE", help="a running spot instance (i-...)")
    interrupt.add_argument(
        "--notice",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="seconds between the notice and the termination (default 120, as EC2)",
    )
    interrupt.add_argument("--json", action="store_true", help="print one JSON object")
    shell = sub.add_parser("shell", help="a local shell in an instance's root directory")
    shell.add_argument("instance", metavar="INSTANCE", help="instance id (i-...)")
    return parser


def _up(args: argparse.Namespace) -> int:
    running = service.running_info()
    started = time.monotonic()
    info = service.ensure_up(boot_delay=args.boot_delay, vm=True if args.vm else None, say=None)
    limits = _ec2_settings(args)
    if limits:
        service.configure_ec2(info, **limits)
    if running is not None:
        print(f"local cloud already running at {info.endpoint} (pid {info.pid})")
    else:
        took = time.monotonic() - started
        print(f"local cloud up at {info.endpoint} (pid {info.pid}) in {took:.1f} s")
    print(service.describe_state(info))
    print(f"image {info.image_id}, region {info.region}; `awsac local env` for the AWS CLI")
    if info.runner == "vm":
        print("instances are QEMU virtual machines (docs/local-cloud.md, VM mode)")
    return 0


def _image(args: argparse.Namespace) -> int:
    from awsac_tui.local import image

    if args.action == "build":
        started = time.monotonic()
        built = image.ensure_images(force=args.force)
        print(f"VM images ready in {time.monotonic() - started:.0f} s (cache {image.vm_dir()})")
    else:
        built = {k: v for k in image.KINDS if (v := image.find_image(k)) is not None}
    for kind in image.KINDS:
        found = built.get(kind)
        if found is None:
            print(f"{kind}: not built (`awsac local image build`)")
        else:
            took = found.manifest().get("build_seconds", "?")
            print(f"{kind}: {found.directory} (built in {took} s)")
    return 0 if len(built) == len(image.KINDS) else 1


def _ec2_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The EC2 limits and EBS timing given to `up` (only those given)."""
    settings: dict[str, Any] = {}
    for name in ("vcpu_quota", "instance_limit", "ebs_delay"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    if args.capacity:
        capacity: dict[str, int] = {}
        for entry in args.capacity:
            kind, _, count = entry.partition("=")
            if not kind or not count.isdigit():
                raise service.LocalCloudError(
                    f"--capacity {entry!r}: give TYPE=N, for example --capacity c5.large=4"
                )
            capacity[kind] = int(count)
        settings["capacity"] = capacity
    return settings


def _down(_args: argparse.Namespace) -> int:
    report = service.down()
    print("local cloud stopped" if report.was_running else "local cloud was not running")
    if report.strays_ended:
        ended = [p for p in report.strays_ended if p not in report.strays_left]
        if ended:
            print(f"ended {len(ended)} instance process(es) left behind: pids {_pids(ended)}")
    if report.strays_left:
        print(
            f"{len(report.strays_left)} instance process(es) could not be ended: pids "
            f"{_pids(report.strays_left)}; end them by hand (kill -9)",
            file=sys.stderr,
        )
        return 1
    print("checked: no instance process left")
    return 0


def _pids(pids: tuple[int, ...] | list[int]) -> str:
    return ", ".join(str(p) for p in pids)


def _status(args: argparse.Namespace) -> int:
    info = service.running_info()
    if info is None:
        if args.json:
            print(json.dumps({"running": False}))
        else:
            print("local cloud is not running (start it with `awsac local up`)")
        return 1
    current = service.status()
    if args.json:
        print(json.dumps({"running": True, **current.as_dict()}, indent=2))
        return 0
    print(f"local cloud at {info.endpoint} (pid {info.pid}), region {info.region}")
    print(f"image {info.image_id} ({info.account_id}), state in {info.state_dir}")
    print(service.describe_state(info))
    if current.saving_error:
        print(f"WARNING: changes are not being saved to disk: {current.saving_error}")
    _section("instances", current.instances, ("instance_id", "state", "launch_index", "image_id"))
    _section("volumes", current.volumes, ("volume_id", "state", "size", "snapshot_id"))
    _section("snapshots", current.snapshots, ("snapshot_id", "state", "description"))
    print(f"domains ({len(current.domains)}): {', '.join(current.domains) or '-'}")
    return 0


def _section(title: str, rows: tuple[dict[str, Any], ...], keys: tuple[str, ...]) -> None:
    print(f"{title} ({len(rows)})")
    for row in rows:
        print("  " + "  ".join(str(row.get(k) if row.get(k) is not None else "-") for k in keys))


def _env(_args: argparse.Namespace) -> int:
    info = service.running_info()
    if info is None:
        raise service.LocalCloudError(
            "the local cloud is not running; start it with `awsac local up`"
        )
    print("# the local cloud's endpoint and dummy credentials (not secrets)")
    for name, value in service.client_env(info).items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def _reset(_args: argparse.Namespace) -> int:
    info = service.reset()
    if info is None:
        print(f"forgot the saved state in {service.local_dir()} (the local cloud was not running)")
    else:
        print(f"local cloud reset, on disk too; image {info.image_id}")
    return 0


def _snapshot(args: argparse.Namespace) -> int:
    snapshot_id = service.make_snapshot(args.directory, args.description)
    if args.json:
        print(json.dumps({"snapshot_id": snapshot_id}))
    else:
        print(f"{snapshot_id}: snapshot of {args.directory}")
    return 0


def _interrupt(args: argparse.Namespace) -> int:
    served = service.interrupt(args.instance, args.notice)
    if args.json:
        print(json.dumps(served))
        return 0
    print(
        f"{served['instance_id']}: spot interruption notice served at {served['noticed']}: "
        f"{served['action']} at {served['time']} (in {served['notice_s']:g} s), then terminated "
        f"with state reason {served['state_reason']}"
    )
    return 0


def _shell(args: argparse.Namespace) -> int:
    info = service.running_info()
    if info is None:
        raise service.LocalCloudError(
            "the local cloud is not running; start it with `awsac local up`"
        )
    record_path = service.local_dir() / "instances" / args.instance / "instance.json"
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError) as exc:
        raise service.LocalCloudError(
            f"instance {args.instance} has not booted in the local cloud ({record_path} is "
            "missing); check the id with `awsac local status`"
        ) from exc
    if not record.get("boot_command"):
        raise service.LocalCloudError(
            f"instance {args.instance} boots no process (the local cloud's boot command is []): "
            "there is nothing to enter (service.configure(info, boot_command=[...]) gives one)"
        )
    instance_dir = record_path.parent
    env = instance_environment(
        dict(os.environ),
        endpoint=info.endpoint,
        region=info.region,
        imds_endpoint=record["imds_endpoint"],
        instance_dir=instance_dir,
    )
    env["AWSAC_LOCAL_INSTANCE_ID"] = args.instance
    if os.environ.get("TERM"):
        env["TERM"] = os.environ["TERM"]
    shell = os.environ.get("SHELL") or "/bin/sh"
    print(
        f"awsac local shell: this is a LOCAL shell on this machine, not an ssh login.\n"
        f"  instance {args.instance} is a process tree here; its root is {record['root']}\n"
        f"  the job environment is set (AWSAC_WORK_DIR={env['AWSAC_WORK_DIR']}); "
        "exit to leave.",
        file=sys.stderr,
        flush=True,
    )
    return subprocess.call([shell], cwd=record["root"], env=env)


COMMANDS = {
    "up": _up,
    "image": _image,
    "down": _down,
    "status": _status,
    "env": _env,
    "reset": _reset,
    "snapshot": _snapshot,
    "shell": _shell,
    "interrupt": _interrupt,
}


def main(argv: list[str]) -> int:
    """Run ``awsac local ARGV``; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except AwsacError as exc:
        print(f"awsac local {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
