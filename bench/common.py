"""Shared helpers of the benchmarks: a private local cloud, call/byte counting hooks, statistics.

Every benchmark runs against its own state directory (``AWSAC_STATE_DIR``), never another one.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_JSON = BENCH_DIR / "results.json"  # every benchmark's figures; RESULTS.md is rendered


def update_results(**sections: Any) -> Path:
    """Replace ``sections`` (top-level keys) of results.json and keep the rest; returns its path
    (``python run_all.py --render`` then rewrites RESULTS.md from it)."""
    saved = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    saved.update(sections)
    RESULTS_JSON.write_text(json.dumps(saved, indent=1) + "\n")
    return RESULTS_JSON


for _p in (str(ROOT), str(ROOT / "agent")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

EXAMPLE = ROOT / "examples" / "eventgen"
CALL_LOG_ENV = "AWSAC_BENCH_CALL_LOG"  # agent_probe.py appends one JSON line per call here
PROFILE_ENV = "AWSAC_BENCH_PROFILE_DIR"  # agent_probe.py writes a pyinstrument profile here


# ---- statistics --------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    """The median (nan for no values)."""
    return statistics.median(values) if values else float("nan")


def fmt_s(seconds: float) -> str:
    """Seconds as '1.23 s' or '45.6 ms'."""
    if seconds != seconds:  # nan
        return "n/a"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# ---- counting API calls and bytes with botocore event hooks -------------------------------------


@dataclass
class CallCounter:
    """API calls (HTTP responses) and bytes of response bodies, counted by botocore event hooks."""

    calls: Counter[str] = field(default_factory=Counter)
    op_seconds: Counter[str] = field(default_factory=Counter)  # before-call to after-call
    bytes_received: int = 0
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (time, op, "send"/"recv")
    keep_events: bool = False

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        self.calls.clear()
        self.op_seconds.clear()
        self.bytes_received = 0
        self.events.clear()

    def _before_send(self, request: Any = None, **kw: Any) -> None:
        if self.keep_events:
            op = getattr(getattr(request, "context", {}), "get", lambda *_: None)("operation")
            self.events.append((time.time(), str(op or "?"), "send"))

    def _before_parse(
        self, operation_model: Any = None, response_dict: Any = None, **kw: Any
    ) -> None:
        name = f"{operation_model.service_model.service_id.hyphenize()}:{operation_model.name}"
        self.calls[name] += 1
        body = (response_dict or {}).get("body")
        if isinstance(body, bytes | bytearray):
            self.bytes_received += len(body)
        else:  # a streaming body (S3 GetObject): its announced length
            headers = (response_dict or {}).get("headers") or {}
            self.bytes_received += int(headers.get("content-length") or 0)
        if self.keep_events:
            self.events.append((time.time(), name, "recv"))

    def _before_call(self, model: Any = None, context: Any = None, **kw: Any) -> None:
        if isinstance(context, dict):
            context["awsac_bench_t0"] = time.perf_counter()

    def _after_call(self, model: Any = None, context: Any = None, **kw: Any) -> None:
        t0 = context.get("awsac_bench_t0") if isinstance(context, dict) else None
        if t0 is not None:
            name = f"{model.service_model.service_id.hyphenize()}:{model.name}"
            self.op_seconds[name] += time.perf_counter() - t0

    def install(self, client: Any) -> Any:
        """Count every call of ``client`` (boto3 or aiobotocore); returns the client."""
        client.meta.events.register("before-parse", self._before_parse)
        client.meta.events.register("before-call", self._before_call)
        client.meta.events.register("after-call", self._after_call)
        return client


async def counted_cloud_clients(cloud: Any, counter: CallCounter) -> None:
    """Open the Cloud's ec2, s3 and sdb clients and hook ``counter`` into each (once)."""
    for service in ("ec2", "s3", "sdb"):
        client = await cloud.client(service)
        if not getattr(client, "_awsac_bench_counted", False):
            counter.install(client)
            client._awsac_bench_counted = True


# ---- the private local cloud --------------------------------------------------------------------


@contextlib.contextmanager
def private_local_cloud(
    *, boot_delay: float = 0.0, keep_dir: Path | None = None
) -> Iterator[tuple[Any, Path]]:
    """A local cloud of our own (fresh state dir); always brought down at the end.

    Yields (LocalCloudInfo, state_dir). Sets AWSAC_STATE_DIR for this process (and its children).
    """
    tmp = tempfile.mkdtemp(prefix="awsac-bench-") if keep_dir is None else str(keep_dir)
    state = Path(tmp)
    old = os.environ.get("AWSAC_STATE_DIR")
    os.environ["AWSAC_STATE_DIR"] = str(state)
    # the service hands its environment to every instance: the probe's switches must be set now
    os.environ[CALL_LOG_ENV] = str(state / "agent-calls.jsonl")
    os.environ[PROFILE_ENV] = str(state / "agent-profiles")
    from awsac_tui.local import service

    try:
        info = service.ensure_up(boot_delay=boot_delay, boot_command=probe_boot_command())
        service.configure_ec2(info, ebs_delay=0)  # like the boot delay: no emulated waiting
        yield info, state
    finally:
        service.down()
        kill_leftovers(state)
        if keep_dir is None:
            import shutil

            shutil.rmtree(state, ignore_errors=True)
        os.environ.pop(CALL_LOG_ENV, None)
        os.environ.pop(PROFILE_ENV, None)
        if old is None:
            os.environ.pop("AWSAC_STATE_DIR", None)
        else:
            os.environ["AWSAC_STATE_DIR"] = old


def kill_leftovers(state: Path) -> list[int]:
    """End process groups whose leader runs from inside ``state`` (job processes escape the
    instance's process group: they run in sessions of their own). Returns the groups ended."""
    import signal

    ended = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            pgid = os.getpgid(int(proc.name))
        except (OSError, ProcessLookupError):
            continue
        if str(state) in cmd and pgid == int(proc.name) and pgid != os.getpgid(0):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
                ended.append(pgid)
    return ended


def probe_boot_command() -> list[str]:
    """The instances' boot command: the real agent autorun, wrapped by agent_probe.py."""
    return [sys.executable, str(BENCH_DIR / "agent_probe.py"), "autorun"]


def read_call_log(path: Path) -> list[dict[str, Any]]:
    """The agent-side call log written by agent_probe.py (one JSON object per line)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


# ---- the machine --------------------------------------------------------------------------------


def machine_info() -> dict[str, str]:
    """CPU model, cores, memory, OS, Python and the versions of the libraries that matter."""
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    load = "?"
    with contextlib.suppress(OSError):
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    versions = {}
    for mod in ("aiobotocore", "botocore", "boto3", "moto", "textual", "rich"):
        try:
            from importlib.metadata import version

            versions[mod] = version(mod)
        except Exception:  # noqa: BLE001 - not installed
            versions[mod] = "-"
    commit = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "load average at start": load,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        **versions,
        "awsac commit": commit,
    }
