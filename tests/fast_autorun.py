"""The session-side autorun of the end-to-end tests: the worker polls fast and takes test-only
knobs from it (a user may ship their own awsac_all_instances_autorun.sh in the same way)."""

from __future__ import annotations

FAST_AUTORUN = """#!/bin/sh
cd "$(dirname "$0")" || exit 1
export AWSAC_POLL_SECONDS=0.5 AWSAC_WAITER_DELAY_SECONDS=0.5 AWSAC_RETRY_BASE_SECONDS=0.2
export AWSAC_KILL_GRACE_SECONDS=2 AWSAC_VOLUME_TIMEOUT_SECONDS=20 AWSAC_HEARTBEAT_SECONDS=1
export AWSAC_STATUS_COALESCE_SECONDS=0.5 AWSAC_SPOT_POLL_SECONDS=0.5
@EXTRA@
exec "${AWSAC_PYTHON:-python3}" awsac-processjobs.pyz "$@"
"""


def fast_autorun(extra: str = "") -> str:
    """The autorun script, with ``extra`` shell lines (more exports) before the worker starts."""
    return FAST_AUTORUN.replace("@EXTRA@", extra)
