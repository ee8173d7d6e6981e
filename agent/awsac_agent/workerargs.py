"""The worker's command-line options, shared by ``awsac-agent`` (cli.py) and the worker's own
command line (processjobs.py), so that neither imports the other and the boot step need not
import the worker."""

from __future__ import annotations

import argparse


def add_worker_arguments(p: argparse.ArgumentParser) -> None:
    """The worker's options (``processjobs``), for ``awsac-agent processjobs`` and the zipapp."""
    p.add_argument(
        "--keep-instance",
        action="store_true",
        help="do everything except terminating this instance (for debugging)",
    )
    p.add_argument(
        "--keep-instance-on-failure",
        type=float,
        metavar="MIN",
        default=None,
        help="when something failed, keep the instance MIN minutes before terminating it",
    )
    p.add_argument(
        "--session-dir",
        default=None,
        help="the extracted session archive (default: $AWSACworkingDir or the current directory)",
    )
