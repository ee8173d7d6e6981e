"""The fault switchboard on the client's side: ``AWSAC_FAULTS`` rules hook the local cloud's clients.

Same rules and counters as the agent (``awsac_agent.faults``); only in local mode, never on AWS.
"""

from __future__ import annotations

from typing import Any

from awsac_agent import faults


def install(client: Any, local: bool) -> Any:
    """Hook an aiobotocore ``client`` with the process's fault plan when ``local``; returns it."""
    if not local:
        return client
    return faults.plan().install(client, asynchronous=True)
