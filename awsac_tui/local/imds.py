"""A per-instance metadata endpoint (IMDSv2) on loopback, plus the local device extension.

Serves what an EC2 instance sees at 169.254.169.254 for one instance of the local cloud.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from awsac_tui.local.common import (
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    DUMMY_SESSION_TOKEN,
    ROLE_NAME,
)

TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
VOLUME_PREFIX = "/awsac-local/volumes/"


@dataclass(frozen=True)
class InstanceMetadata:
    """What one instance's metadata endpoint answers."""

    instance_id: str
    reservation_id: str
    ami_id: str
    ami_launch_index: int
    instance_type: str
    availability_zone: str
    region: str
    local_ipv4: str
    public_ipv4: str
    public_hostname: str
    local_hostname: str
    account_id: str
    user_data: bytes | None
    life_cycle: str = "on-demand"  # "spot" when launched with InstanceMarketOptions spot

    def meta_data(self) -> dict[str, str]:
        """Leaf paths under /latest/meta-data/ and their values."""
        return {
            "ami-id": self.ami_id,
            "ami-launch-index": str(self.ami_launch_index),
            "hostname": self.local_hostname,
            "instance-id": self.instance_id,
            "instance-life-cycle": self.life_cycle,
            "instance-type": self.instance_type,
            "local-hostname": self.local_hostname,
            "local-ipv4": self.local_ipv4,
            "placement/availability-zone": self.availability_zone,
            "placement/region": self.region,
            "public-hostname": self.public_hostname,
            "public-ipv4": self.public_ipv4,
            "reservation-id": self.reservation_id,
            "iam/security-credentials/": ROLE_NAME,
        }

    def identity_document(self) -> dict[str, object]:
        return {
            "accountId": self.account_id,
            "architecture": "x86_64",
            "availabilityZone": self.availability_zone,
            "imageId": self.ami_id,
            "instanceId": self.instance_id,
            "instanceType": self.instance_type,
            "privateIp": self.local_ipv4,
            "region": self.region,
            "version": "2017-09-30",
        }


VolumeLookup = Callable[[str], "dict[str, object] | None"]

NOTICE_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class SpotNotice:
    """An interruption notice as EC2 serves it: the action and when it happens (UTC)."""

    action: str  # "terminate" (also "stop", "hibernate" on EC2)
    time: datetime  # when EC2 acts, aware UTC
    noticed: datetime  # when the notice (and the rebalance recommendation) appeared

    def instance_action(self) -> dict[str, str]:
        return {"action": self.action, "time": self.time.strftime(NOTICE_TIME_FORMAT)}

    def rebalance(self) -> dict[str, str]:
        return {"noticeTime": self.noticed.strftime(NOTICE_TIME_FORMAT)}

    def meta_data(self) -> dict[str, str]:
        """The leaves EC2 adds under meta-data/ once a spot instance has its notice."""
        return {
            "spot/instance-action": json.dumps(self.instance_action()),
            "spot/termination-time": self.time.strftime(NOTICE_TIME_FORMAT),
            "events/recommendations/rebalance": json.dumps(self.rebalance()),
        }


def role_credentials() -> dict[str, str]:
    """The emulator's dummy credentials in the shape EC2 serves role credentials."""
    now = datetime.now(UTC)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return {
        "Code": "Success",
        "LastUpdated": now.strftime(fmt),
        "Type": "AWS-HMAC",
        "AccessKeyId": DUMMY_ACCESS_KEY_ID,
        "SecretAccessKey": DUMMY_SECRET_ACCESS_KEY,
        "Token": DUMMY_SESSION_TOKEN,
        "Expiration": (now + timedelta(hours=6)).strftime(fmt),
    }


class MetadataServer:
    """One instance's metadata endpoint, served by a thread on 127.0.0.1 and a free port."""

    def __init__(self, metadata: InstanceMetadata, volume_lookup: VolumeLookup) -> None:
        self.metadata = metadata
        self.volume_lookup = volume_lookup
        self.spot_notice: SpotNotice | None = None  # set by the runner's interrupt; 404 before
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"imds-{metadata.instance_id}", daemon=True
        )

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def new_token(self, ttl: int) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = time.monotonic() + ttl
        return token

    def token_valid(self, token: str | None) -> bool:
        if not token:
            return False
        with self._lock:
            expiry = self._tokens.get(token)
        return expiry is not None and expiry > time.monotonic()


def _make_handler(owner: MetadataServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "EC2ws"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _send(self, status: int, body: bytes | str, ctype: str = "text/plain") -> None:
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if self.path.rstrip("/") != "/latest/api/token":
                self._send(404, "Not Found")
                return
            ttl_text = self.headers.get(TOKEN_TTL_HEADER)
            if not ttl_text or not ttl_text.isdigit() or not 1 <= int(ttl_text) <= 21600:
                self._send(400, "Bad Request")
                return
            self._send(200, owner.new_token(int(ttl_text)))

        def do_GET(self) -> None:  # noqa: N802
            if not owner.token_valid(self.headers.get(TOKEN_HEADER)):
                self._send(401, "Unauthorized")
                return
            status, body, ctype = _answer(owner, unversioned(self.path.split("?", 1)[0]))
            self._send(status, body, ctype)

    return Handler


def _listing(paths: list[str], prefix: str) -> str:
    entries: list[str] = []
    for path in paths:
        if not path.startswith(prefix):
            continue
        rest = path[len(prefix) :]
        head = rest.split("/", 1)[0] + ("/" if "/" in rest else "")
        if head and head not in entries:
            entries.append(head)
    return "\n".join(entries)


_VERSION = re.compile(r"^/\d{4}-\d{2}-\d{2}(?=/|$)")


def unversioned(path: str) -> str:
    """``/2009-04-04/meta-data/...`` as ``/latest/meta-data/...``: EC2 serves every API version
    (cloud-init's Ec2 datasource asks for dated ones), and they answer alike here."""
    return _VERSION.sub("/latest", path, count=1)


def _answer(owner: MetadataServer, path: str) -> tuple[int, bytes | str, str]:
    md = owner.metadata
    if path.startswith(VOLUME_PREFIX):
        info = owner.volume_lookup(path[len(VOLUME_PREFIX) :].strip("/"))
        if info is None:
            return 404, "Not Found", "text/plain"
        return 200, json.dumps(info), "application/json"
    if path in ("/latest/user-data", "/latest/user-data/"):
        if not md.user_data:
            return 404, "Not Found", "text/plain"
        return 200, md.user_data, "application/octet-stream"
    if path in ("/latest/dynamic", "/latest/dynamic/"):
        return 200, "instance-identity/", "text/plain"
    if path in ("/latest/dynamic/instance-identity", "/latest/dynamic/instance-identity/"):
        return 200, "document", "text/plain"
    if path in ("/latest/dynamic/instance-identity/document",):
        return 200, json.dumps(md.identity_document(), indent=2), "application/json"
    if path in ("/", "/latest", "/latest/"):
        return 200, "dynamic\nmeta-data\nuser-data", "text/plain"
    prefix = "/latest/meta-data/"
    if not (path + "/").startswith(prefix):
        return 404, "Not Found", "text/plain"
    key = path[len(prefix) :]
    values = md.meta_data()
    notice = owner.spot_notice
    if notice is not None:
        values.update(notice.meta_data())
    role_path = f"iam/security-credentials/{ROLE_NAME}"
    if key.rstrip("/") == role_path:
        return 200, json.dumps(role_credentials(), indent=2), "text/plain"
    if key in values:
        return 200, values[key], "text/plain"
    if key.rstrip("/") in values:
        return 200, values[key.rstrip("/")], "text/plain"
    listing_keys = list(values) + [role_path]
    listing_prefix = key if key.endswith("/") or not key else key + "/"
    listing = _listing(listing_keys, listing_prefix)
    if listing:
        return 200, listing, "text/plain"
    return 404, "Not Found", "text/plain"
