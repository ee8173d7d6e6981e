"""``awsac-agent``: the instance-side commands (autorun, the boot step; processjobs, the worker)."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from . import __version__
from .errors import AwsacError
from .workerargs import add_worker_arguments


def build_parser() -> argparse.ArgumentParser:
    """The ``awsac-agent`` command line; imports neither the worker nor boto3."""
    p = argparse.ArgumentParser(
        prog="awsac-agent",
        description="The instance side of awsac: boot step and job worker of a session.",
    )
    p.add_argument("--version", action="version", version=f"awsac-agent {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    a = sub.add_parser(
        "autorun",
        help="boot step: read user-data, fetch and extract the session archive, run its autorun",
        description="Read the user-data, fetch and extract the session archive, run its "
        "awsac_all_instances_autorun.sh. Not an awsac instance: say so and exit 0.",
    )
    a.add_argument(
        "--keep-instance", action="store_true", help="never terminate this instance (debugging)"
    )
    pj = sub.add_parser(
        "processjobs",
        help="the worker: run this instance's jobs, save their output, clean up, terminate",
        description="Run this instance's jobs of the session in the current directory.",
    )
    add_worker_arguments(pj)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``awsac-agent``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "autorun":
            from .autorun import autorun

            return autorun(keep_instance=args.keep_instance)
        if args.command == "processjobs":
            from .processjobs import run

            return run(args)
    except AwsacError as exc:
        print(f"awsac-agent: {exc}", file=sys.stderr)
        return exc.exit_code
    parser.print_help()
    return 2
