"""Boot command of the benchmark's instances: the real agent, with botocore hooks that log its calls.

``agent_probe.py autorun`` runs ``awsac_agent autorun``; ``agent_probe.py X.pyz`` runs the worker
zipapp. With ``$AWSAC_BENCH_CALL_LOG`` set, every API call of the process is appended to that file
as one JSON line; when the directory ``$AWSAC_BENCH_PROFILE_DIR`` exists, a pyinstrument profile goes there.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

LOG = os.environ.get("AWSAC_BENCH_CALL_LOG")
PROFILE_DIR = os.environ.get("AWSAC_BENCH_PROFILE_DIR")
_profiler: Any = None
_role = "agent"


def _write(entry: dict[str, Any]) -> None:
    if not LOG:
        return
    line = (json.dumps(entry) + "\n").encode()
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _statuses_of(service: str, op: str, params: Any) -> list[tuple[int | None, str]]:
    """(job number, status) of every job status record the call writes (the agent's writer
    sends several records due together as one BatchPutAttributes)."""
    body = params.get("body") if isinstance(params, dict) else None
    if service == "sdb" and op == "BatchPutAttributes" and isinstance(body, dict):
        out = []
        for k, v in body.items():
            # Item.N.Attribute.M.Name = status -> Item.N.Attribute.M.Value, Item.N.ItemName
            if k.startswith("Item.") and k.endswith(".Name") and v == "status":
                item = str(body.get(k.split(".Attribute.")[0] + ".ItemName", ""))
                nr = int(item[3:]) if item.startswith("job") and item[3:].isdigit() else None
                out.append((nr, str(body.get(k[: -len("Name")] + "Value"))))
        return out
    nr, status = _status_of(service, op, params)
    return [] if status is None else [(nr, status)]


def _status_of(service: str, op: str, params: Any) -> tuple[int | None, str | None]:
    """(job number, status) when the call writes one job status record, else (None, None)."""
    if not isinstance(params, dict):
        return None, None
    body = params.get("body")
    if service == "sdb" and op == "PutAttributes" and isinstance(body, dict):
        item = str(body.get("ItemName", ""))
        for k, v in body.items():
            if k.endswith(".Name") and v == "status":
                value = body.get(k[: -len("Name")] + "Value")
                nr = int(item[3:]) if item.startswith("job") and item[3:].isdigit() else None
                return nr, str(value)
    if service == "s3" and op == "PutObject" and "/status/" in str(params.get("url_path", "")):
        try:
            data = json.loads(body if isinstance(body, (bytes, str)) else b"{}")
            return int(data.get("jobnr")), str(data.get("status"))
        except (ValueError, TypeError):
            return None, None
    return None, None


def _statuses_of(service: str, op: str, params: Any) -> list[tuple[int | None, str]]:
    """Every (job number, status) a call writes: one for a put, each item of a batch put."""
    body = params.get("body") if isinstance(params, dict) else None
    if service == "sdb" and op == "BatchPutAttributes" and isinstance(body, dict):
        found = []
        for key, value in body.items():
            parts = key.split(".")  # Item.N.Attribute.M.Name
            if len(parts) == 5 and parts[0] == "Item" and parts[4] == "Name" and value == "status":
                item = str(body.get(f"Item.{parts[1]}.ItemName", ""))
                nr = int(item[3:]) if item.startswith("job") and item[3:].isdigit() else None
                found.append((nr, str(body.get(key[: -len("Name")] + "Value"))))
        return found
    nr, status = _status_of(service, op, params)
    return [] if status is None else [(nr, status)]


def _stop_profile(tag: str) -> None:
    global _profiler
    if _profiler is None or not PROFILE_DIR:
        return
    prof, _profiler = _profiler, None
    prof.stop()
    out = Path(PROFILE_DIR) / f"{_role}-{tag}-{os.getpid()}.txt"
    out.write_text(prof.output_text(unicode=False, color=False, show_all=False))


def _install_hooks() -> None:
    import botocore.session

    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        service = client.meta.service_model.service_id.hyphenize()
        service = "sdb" if service == "simpledb" else service

        def before_call(model: Any = None, params: Any = None, **kw: Any) -> None:
            if model.name == "TerminateInstances":  # its answer may never come: we get killed
                _write({"k": "terminate", "t": time.time(), "pid": os.getpid(), "role": _role})
                _stop_profile("worker")
            for nr, status in _statuses_of(service, model.name, params):
                _write(
                    {
                        "k": "status",
                        "t": time.time(),
                        "pid": os.getpid(),
                        "job": nr,
                        "status": status,
                    }
                )

        def before_parse(operation_model: Any = None, response_dict: Any = None, **kw: Any) -> None:
            body = (response_dict or {}).get("body")
            if isinstance(body, (bytes, bytearray)):
                size = len(body)
            else:
                size = int(((response_dict or {}).get("headers") or {}).get("content-length") or 0)
            _write(
                {
                    "k": "call",
                    "t": time.time(),
                    "pid": os.getpid(),
                    "role": _role,
                    "op": f"{service}:{operation_model.name}",
                    "bytes": size,
                }
            )

        client.meta.events.register("before-call", before_call)
        client.meta.events.register("before-parse", before_parse)
        return client

    botocore.session.Session.create_client = create_client


def main() -> None:
    global _profiler, _role
    target = sys.argv[1] if len(sys.argv) > 1 else "autorun"
    _role = "autorun" if target == "autorun" else "worker"
    _write({"k": "start", "t": time.time(), "pid": os.getpid(), "role": _role})
    if PROFILE_DIR and Path(PROFILE_DIR).is_dir():  # the benchmark creates it for profiled runs
        from pyinstrument import Profiler

        _profiler = Profiler(interval=0.001)
        _profiler.start()
    _install_hooks()
    if target == "autorun":
        # the session's autorun script starts the worker with $AWSAC_PYTHON: make that us too
        shim = Path(os.environ.get("AWSAC_WORK_DIR", "/tmp")).parent / "bench-python"
        shim.parent.mkdir(parents=True, exist_ok=True)
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
        shim.chmod(0o755)
        os.environ["AWSAC_PYTHON"] = str(shim)
        real_call = subprocess.call

        def call(*args: Any, **kwargs: Any) -> int:
            _stop_profile("boot")  # the boot step's own work ends where the worker starts
            return real_call(*args, **kwargs)

        subprocess.call = call  # type: ignore[assignment]
        sys.argv = ["awsac_agent", "autorun", *sys.argv[2:]]
        runpy.run_module("awsac_agent", run_name="__main__", alter_sys=True)
    else:
        sys.argv = [target, *sys.argv[2:]]
        sys.path.insert(0, target)
        runpy.run_path(target, run_name="__main__")


if __name__ == "__main__":
    main()
