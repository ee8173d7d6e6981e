"""Paths, constants and the instance environment shared by the local cloud's service, server and CLI.

Imports nothing heavy (no moto), so the CLI and the client can use it cheaply.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
import shutil
import signal
import stat
import sys
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from awsac_agent.fsutil import atomic_write
from awsac_agent.fsutil import atomic_write_json as write_json_atomic  # noqa: F401 - for local/

from awsac_tui.paths import local_dir, state_dir  # noqa: F401 - the local cloud's API names them

REGION = "us-east-1"
AVAILABILITY_ZONE = "us-east-1a"
ACCOUNT_ID = "123456789012"  # moto's default account
IMAGE_NAME = "awsac-local"
IMAGE_ID = "ami-0a75ac10ca1000000"  # fixed: the same at every up and reset
# The stock image (cloud-init, no agent; image_mode = "stock"): under the VM runner it boots the
# stock VM image, under the process runner it is the same as IMAGE_ID.
STOCK_IMAGE_NAME = "awsac-local-stock"
STOCK_IMAGE_ID = "ami-0a75ac10ca1000001"
ROLE_NAME = "awsac-local-instance"
# Obviously not secrets: the emulator accepts any credentials.
DUMMY_ACCESS_KEY_ID = "AKIDAWSACLOCALDUMMY"
DUMMY_SECRET_ACCESS_KEY = "awsac-local-dummy-secret-not-a-real-key"
DUMMY_SESSION_TOKEN = "awsac-local-dummy-session-token"
DEFAULT_BOOT_DELAY = 1.0
SIDE_PREFIX = "/_awsac/"  # side endpoints of the server; "_" is not valid in a bucket name
# The side endpoints obey only the owner of the local cloud: each request carries the token that
# the service writes, readable by its owner alone (0600), into its state directory at every start.
SIDE_TOKEN_HEADER = "X-Awsac-Token"
SIDE_TOKEN_FILE = "side-token"
# moto's backends are not thread-safe (its describe calls iterate dicts that a concurrent write
# changes: RuntimeError, an HTML 500, botocore's ResponseParserError). Every request of the
# server, and every other thread of the service that reads or changes a backend, holds this lock.
BACKEND_LOCK = threading.RLock()
STATE_ERROR_EXIT = 3  # the server's exit code when its saved state cannot be read
STATE_ERROR_MARK = "awsac-local-state-error: "  # ... and the start of its one-line reason

# What an instance's environment takes from the local cloud's (the user's shell's): a real instance
# has its image's environment, never the user's, so only these names pass, plus awsac's own
# AWSAC_* knobs (poll intervals, fault rules) that do not look like secrets. Everything else
# (GITHUB_TOKEN, *_PASSWORD, proxies with credentials, AWS keys and profiles) stays out; boto3
# inside the instance takes the role credentials from its metadata endpoint, as on EC2.
INSTANCE_ENV_ALLOWED = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ")
INSTANCE_ENV_PREFIX = "AWSAC_"
INSTANCE_ENV_NOT_PASSED = ("AWSAC_STATE_DIR", "AWSAC_LOCAL_BOOT_COMMAND")
SECRET_SHAPED_NAME = re.compile(
    r"(TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY|PRIVATE|AUTH|COOKIE|SESSION_KEY)", re.IGNORECASE
)


def passes_to_instance(name: str) -> bool:
    """Whether variable ``name`` of the local cloud's environment reaches an instance."""
    if name in INSTANCE_ENV_ALLOWED:
        return True
    return (
        name.startswith(INSTANCE_ENV_PREFIX)
        and name not in INSTANCE_ENV_NOT_PASSED
        and not SECRET_SHAPED_NAME.search(name)
    )


def side_token_path(local: Path | None = None) -> Path:
    """The owner-only file that holds the side endpoints' token of the local cloud in ``local``."""
    return (local if local is not None else local_dir()) / SIDE_TOKEN_FILE


def write_side_token(local: Path) -> str:
    """A new random token, written to ``local``/side-token with mode 0600; returns it."""
    token = secrets.token_urlsafe(32)
    atomic_write(side_token_path(local), (token + "\n").encode(), 0o600)  # 0600 from its birth
    return token


def read_side_token(local: Path | None = None) -> str:
    """The side endpoints' token of the local cloud in ``local`` ("" when it cannot be read)."""
    try:
        return side_token_path(local).read_text().strip()
    except OSError:
        return ""


def token_matches(given: str, token: str) -> bool:
    """Constant-time comparison of a request's token with the service's."""
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


def side_call(
    endpoint: str,
    name: str,
    payload: dict[str, Any] | None = None,
    *,
    timeout: float = 5.0,
    local: Path | None = None,
) -> Any:
    """Call side endpoint ``name`` of the local cloud at ``endpoint`` with its owner's token.

    Loopback only, never through a proxy. GET without ``payload``, POST with it. The token is read
    from ``local`` (default: this state directory's local cloud). Raises urllib's HTTPError
    (403 without the right token) or OSError when the service does not answer.
    """
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        endpoint.rstrip("/") + SIDE_PREFIX + name,
        data=data,
        method="POST" if data is not None else "GET",
        headers={"Content-Type": "application/json", SIDE_TOKEN_HEADER: read_side_token(local)},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=timeout) as response:
        return json.loads(response.read())


def default_boot_command() -> list[str]:
    """The command an instance runs at boot: $AWSAC_LOCAL_BOOT_COMMAND or the agent's autorun."""
    import shlex

    configured = os.environ.get("AWSAC_LOCAL_BOOT_COMMAND")
    if configured:
        return shlex.split(configured)
    return [sys.executable, "-m", "awsac_agent", "autorun"]


def code_pythonpath() -> str:
    """PYTHONPATH that makes awsac_tui and awsac_agent importable in child processes."""
    repo = Path(__file__).resolve().parents[2]
    parts = [str(repo)]
    if (repo / "agent" / "awsac_agent").is_dir():
        parts.append(str(repo / "agent"))
    existing = os.environ.get("PYTHONPATH")
    if existing:
        parts.extend(p for p in existing.split(os.pathsep) if p and p not in parts)
    return os.pathsep.join(parts)


def instance_environment(
    base: dict[str, str],
    *,
    endpoint: str,
    region: str,
    imds_endpoint: str,
    instance_dir: Path,
    python: str | None = None,
) -> dict[str, str]:
    """The environment of an instance's boot process (docs/contracts.md).

    Built from the allow-listed part of ``base`` (``passes_to_instance``) and the instance's own
    values: its endpoints, work dir, ``HOME`` and ``TMPDIR`` inside its root.
    """
    root = instance_dir / "root"
    env = {k: v for k, v in base.items() if passes_to_instance(k)}
    env.setdefault("PATH", os.defpath)
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds_endpoint,
            # no shared credentials or config file may shadow the role credentials
            "AWS_SHARED_CREDENTIALS_FILE": str(instance_dir / "no-aws-credentials"),
            "AWS_CONFIG_FILE": str(instance_dir / "no-aws-config"),
            "AWSAC_WORK_DIR": str(root / "mnt" / "awsac"),
            "AWSAC_DEVICE_PROVIDER": "local",
            # the host's systemd is not the instance's: its subreaper holds the jobs' processes
            "AWSAC_JOB_SCOPES": "off",
            "AWSAC_PYTHON": python or sys.executable,
            "HOME": str(root / "root"),
            "TMPDIR": str(root / "tmp"),
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": code_pythonpath(),
            # endpoints are on loopback: never send them through a proxy
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    return env


def make_instance_root(instance_dir: Path) -> Path:
    """Create an instance's file system root with the directories its environment names."""
    root = instance_dir / "root"
    for sub in ("mnt", "root", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (psutil reads the process table)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def kill_process_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to process group ``pgid``; a group that is gone already is fine."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def remove_tree(path: Path) -> None:
    """rmtree that also removes the read-only snapshot copies."""

    def make_writable(func: Callable[..., Any], target: str, _exc: object) -> None:
        parent = os.path.dirname(target)
        os.chmod(parent, os.stat(parent).st_mode | stat.S_IWUSR)
        if os.path.isdir(target) and not os.path.islink(target):
            os.chmod(target, os.stat(target).st_mode | stat.S_IWUSR | stat.S_IXUSR)
        func(target)

    if path.exists():
        shutil.rmtree(path, onerror=make_writable)
