"""The session verbs, UI-free and async: plan and start, check, results, cleanup, kill,
terminate, console output and job logs, ssh; plus the cost estimate and the compose choices.

Used by the headless ``awsac`` commands and by the TUI; every verb takes a SessionRecord. One
module per verb; this package re-exports the public names, so ``session.start(...)`` works.
Import a module's private helpers from the module (``from awsac_tui.session.start import
_run_args``): the attributes ``session.start``, ``session.check``, ``session.results`` and
``session.cleanup`` are the verbs, not their modules.
"""

from __future__ import annotations

from ..cloud import Cloud, default_profile, make_local_snapshot, start_local_cloud
from ..resources import describe_instances, describe_volumes, list_objects
from .capacity import CapacityError, Quota, read_quota
from .check import check
from .choices import ComposeChoices, ImageInfo, InstanceTypeInfo, SnapshotInfo, compose_choices
from .cleanup import CLEANUP_KINDS, CleanupPlan, CleanupReport, cleanup, plan_cleanup
from .common import PART_SIZE, Confirm, Progress, Say, SessionError, cloud_for
from .control import JobEnded, kill, terminate
from .logs import console_output, job_ended, job_log, live_tail, saved_log
from .plan import StartPlan, check_references, plan_start
from .pricing import CostEstimate, estimate_cost, price_table
from .results import Download, results
from .retry import RetryResult, retry, retry_candidates
from .ssh import ssh_command
from .start import check_image, client_token, start, upload_file

__all__ = [
    "CapacityError",
    "Quota",
    "RetryResult",
    "read_quota",
    "retry",
    "retry_candidates",
    "CLEANUP_KINDS",
    "CleanupPlan",
    "CleanupReport",
    "PART_SIZE",
    "Cloud",
    "ComposeChoices",
    "Confirm",
    "CostEstimate",
    "Download",
    "ImageInfo",
    "InstanceTypeInfo",
    "JobEnded",
    "Progress",
    "Say",
    "SessionError",
    "SnapshotInfo",
    "StartPlan",
    "check",
    "check_image",
    "check_references",
    "cleanup",
    "client_token",
    "cloud_for",
    "compose_choices",
    "console_output",
    "default_profile",
    "describe_instances",
    "describe_volumes",
    "estimate_cost",
    "job_ended",
    "job_log",
    "live_tail",
    "kill",
    "list_objects",
    "make_local_snapshot",
    "plan_cleanup",
    "plan_start",
    "price_table",
    "results",
    "saved_log",
    "ssh_command",
    "start",
    "start_local_cloud",
    "terminate",
    "upload_file",
]
