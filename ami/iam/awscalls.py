"""Record every AWS API call a process makes (botocore event hook) as JSON lines in a file.

``install(path)`` hooks this process; a child process is hooked by putting ``recorder/`` on its
PYTHONPATH with ``AWSAC_RECORD_AWS_CALLS=<file>`` in its environment (see recorder/sitecustomize.py).
"""

from __future__ import annotations

import json
import os
from typing import Any

ENV_FILE = "AWSAC_RECORD_AWS_CALLS"
ENV_COMPONENT = "AWSAC_RECORD_COMPONENT"
_installed: str | None = None


def component() -> str:
    """Who is calling: an instance's agent has its own metadata endpoint, anything else is the client."""
    if os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT"):
        return "agent"
    return os.environ.get(ENV_COMPONENT) or "client"


def record(path: str, model: Any, params: Any) -> None:
    """Append one call (operation model + API params) to ``path``."""
    params = params if isinstance(params, dict) else {}
    tags = params.get("TagSpecifications") or []
    entry = {
        "component": component(),
        "service": model.service_model.service_name,
        "operation": model.name,
        "bucket": params.get("Bucket", ""),
        "key": params.get("Key", "") or "",
        "prefix": params.get("Prefix", "") or "",
        "domain": params.get("DomainName", "") or "",
        "passes_role": bool(params.get("IamInstanceProfile")),
        "tags_on_create": bool(tags),
        "pid": os.getpid(),
    }
    if model.name == "DeleteObjects":
        keys = [o.get("Key", "") for o in (params.get("Delete") or {}).get("Objects", [])]
        entry["key"] = keys[0] if keys else ""
    line = (json.dumps(entry, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line)  # one write per line: O_APPEND keeps lines of several processes whole
    finally:
        os.close(fd)


def install(path: str | None = None) -> bool:
    """Hook every botocore (and aiobotocore) session created from now on; True if installed."""
    global _installed
    path = path or os.environ.get(ENV_FILE)
    if not path:
        return False
    _installed = path
    import botocore.session

    if getattr(botocore.session.Session.__init__, "_awsac_recorder", False):
        return True
    original = botocore.session.Session.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)

        def handler(model: Any = None, params: Any = None, **_: Any) -> None:
            if _installed and model is not None:
                record(_installed, model, params)

        self.register("before-parameter-build", handler, unique_id="awsac-record-aws-calls")

    __init__._awsac_recorder = True  # type: ignore[attr-defined]
    botocore.session.Session.__init__ = __init__  # type: ignore[method-assign]
    return True


def uninstall() -> None:
    """Stop recording in this process (sessions already hooked stay hooked but write nothing)."""
    global _installed
    _installed = None
