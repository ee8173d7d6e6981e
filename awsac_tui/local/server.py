"""The local cloud's process: moto's server on loopback, SimpleDB completed, and the instance runner.

Started in the background by ``awsac local up`` (service.ensure_up); never inside the TUI's process.
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from awsac_agent.errors import AwsacError

from awsac_tui.local import ec2, simpledb
from awsac_tui.local.common import (
    ACCOUNT_ID,
    BACKEND_LOCK,
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    IMAGE_ID,
    IMAGE_NAME,
    REGION,
    SIDE_PREFIX,
    SIDE_TOKEN_HEADER,
    STATE_ERROR_EXIT,
    STATE_ERROR_MARK,
    STOCK_IMAGE_ID,
    STOCK_IMAGE_NAME,
    remove_tree,
    side_token_path,
    token_matches,
    write_json_atomic,
    write_side_token,
)
from awsac_tui.local.persistence import STATE_DIR_NAME, StateError, StateStore
from awsac_tui.local.runner import InstanceRunner
from awsac_tui.local.spot import InterruptError, SpotInterrupter

log = logging.getLogger("awsac.local.server")

TOKEN_ENVIRON_KEY = "HTTP_" + SIDE_TOKEN_HEADER.upper().replace("-", "_")

_runner: InstanceRunner | None = None
_store: StateStore | None = None
_spot: SpotInterrupter | None = None
MOTO_DEFAULT_CLIENT_TOKEN = "ABCDE"  # what moto's RunInstances passes when no ClientToken is given


def runner() -> InstanceRunner | None:
    """The runner of this process (None until the server runs)."""
    return _runner


# ---- moto patches -------------------------------------------------------------------------------


def install_dispatch_patches() -> None:
    """moto's dispatcher asks ``list_of_moto_modules()`` on every request, which lists moto's
    package directory and stats each of its ~150 entries: a third of the server's CPU per request
    (py-spy). The package does not change while the server runs, so the list is read once."""
    import moto.backends
    import moto.core.responses

    modules = tuple(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]
    # Likewise, each Query action asks inspect.getmembers for the names of its response class's
    # methods; the classes are complete (and patched) before the first request.
    moto.core.responses.method_names_from_class = functools.cache(  # type: ignore[assignment]
        moto.core.responses.method_names_from_class
    )


def install_ec2_patches() -> None:
    """Hook moto's EC2 backend: runner on launch/stop/terminate, real console output, EBS fixes."""
    from moto.core.types import Base64EncodedString
    from moto.core.utils import utcnow
    from moto.ec2.exceptions import VolumeInUseError
    from moto.ec2.models.elastic_block_store import EBSBackend
    from moto.ec2.models.instances import Instance, InstanceBackend
    from moto.ec2.responses.general import General

    original_run = InstanceBackend.run_instances
    original_stop = Instance.stop
    original_start = Instance.start
    original_terminate = Instance.terminate
    original_attach = EBSBackend.attach_volume
    original_detach = EBSBackend.detach_volume

    def run_instances(self: Any, *args: Any, **kwargs: Any) -> Any:
        # EC2 makes RunInstances idempotent per ClientToken (a retried call returns the first
        # reservation instead of launching a second one); moto does not, so we do it here.
        token = kwargs.get("client_token")
        tokens: dict[str, Any] = self.__dict__.setdefault("_awsac_client_tokens", {})
        if token and token != MOTO_DEFAULT_CLIENT_TOKEN and token in tokens:
            return tokens[token]
        reservation = original_run(self, *args, **kwargs)
        if token and token != MOTO_DEFAULT_CLIENT_TOKEN:
            tokens[token] = reservation
        if _runner is not None:
            _runner.launched(list(reservation.instances))
        if _spot is not None:
            _spot.launched(list(reservation.instances))
        return reservation

    def stop(self: Any) -> Any:
        previous = original_stop(self)
        if _runner is not None:
            _runner.ended(self.id, terminated=False)
        return previous

    def start(self: Any) -> Any:
        previous = original_start(self)
        if _runner is not None and previous.name == "stopped":
            _runner.started(self)
        return previous

    def terminate(self: Any) -> Any:
        previous = original_terminate(self)
        if previous.name != "terminated":
            ended: dict[str, float] = self.ec2_backend.__dict__.setdefault(
                "_awsac_terminated_at", {}
            )
            ended[self.id] = time.time()
        if _runner is not None and previous.name != "terminated":
            # As on EC2: shutting-down while the machine's processes are ended, then terminated
            # (until then a job of it may still write to S3; cleanup waits for terminated).
            def gone(instance: Any = self) -> None:
                instance._state.name, instance._state.code = "terminated", 48

            self._state.name, self._state.code = "shutting-down", 32
            if not _runner.ended(self.id, terminated=True, done=gone):
                gone()  # no machine to end
        return previous

    def attach_volume(
        self: Any, volume_id: str, instance_id: str, device_path: str, *args: Any, **kwargs: Any
    ) -> Any:
        volume = self.get_volume(volume_id)
        if volume.attachment is not None:
            raise VolumeInUseError(volume_id, volume.attachment.instance.id)
        attachment = original_attach(self, volume_id, instance_id, device_path, *args, **kwargs)
        if _runner is not None:
            _runner.volume_attached(volume)
        return attachment

    def detach_volume(self: Any, volume_id: str, instance_id: str | None, device_path: str) -> Any:
        volume = self.get_volume(volume_id)
        if not instance_id and volume.attachment is not None:
            instance_id = volume.attachment.instance.id
        detached = original_detach(self, volume_id, instance_id, device_path)
        if _runner is not None and instance_id:
            _runner.volume_detached(volume_id, instance_id)
        return detached

    def get_console_output(self: Any) -> Any:
        from moto.core.responses import ActionResult

        instance_id = self._get_param("InstanceId")
        instance = self.ec2_backend.get_instance(instance_id)
        result: dict[str, Any] = {"InstanceId": instance.id, "Timestamp": utcnow()}
        output = _runner.console_tail(instance.id) if _runner is not None else b""
        if output:
            result["Output"] = Base64EncodedString.from_encoded_bytes(base64.b64encode(output))
        return ActionResult(result)

    InstanceBackend.run_instances = run_instances  # type: ignore[method-assign]
    Instance.stop = stop  # type: ignore[method-assign]
    Instance.start = start  # type: ignore[method-assign]
    Instance.terminate = terminate  # type: ignore[method-assign]
    EBSBackend.attach_volume = attach_volume  # type: ignore[method-assign]
    EBSBackend.detach_volume = detach_volume  # type: ignore[method-assign]
    General.get_console_output = get_console_output  # type: ignore[method-assign]


def prepare_backends(region: str) -> str:
    """Load moto's default images now (not at a user's first call); register awsac-local.

    The awsac-local image has the same id at every start and reset, so a session spec may name it.
    """
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami

    backend = ec2_backends[ACCOUNT_ID][region]
    for image_id, name, description in (
        (IMAGE_ID, IMAGE_NAME, "awsac local cloud image (the agent's boot step at boot)"),
        (STOCK_IMAGE_ID, STOCK_IMAGE_NAME, "awsac local stock image (cloud-init, no agent)"),
    ):
        if image_id not in backend.amis:
            backend.amis[image_id] = Ami(
                backend, image_id, instance=None, source_ami=None, name=name,
                description=description,
            )  # fmt: skip
    return IMAGE_ID


def backend_status(region: str, local: Path) -> dict[str, Any]:
    """Instances, volumes, user snapshots and domains, read from the backends directly.

    (Through the API, DescribeSnapshots would also list the ~1,300 snapshots behind moto's
    default images, which takes seconds to serialise.)
    """
    from moto.ec2.models import ec2_backends
    from moto.sdb.models import sdb_backends

    backend = ec2_backends[ACCOUNT_ID][region]
    instances = [
        {
            "instance_id": instance.id,
            "state": instance._state.name,
            "launch_index": instance.ami_launch_index,
            "reservation_id": reservation.id,
            "image_id": instance.image_id,
            "instance_type": instance.instance_type,
        }
        for reservation in list(backend.reservations.values())
        for instance in list(reservation.instances)
    ]
    volumes = [
        {
            "volume_id": volume.id,
            "state": volume.status,
            "size": volume.size,
            "snapshot_id": volume.snapshot_id or None,
            "attached_to": [volume.attachment.instance.id] if volume.attachment else [],
        }
        for volume in list(backend.volumes.values())
    ]
    snapshots = [
        {
            "snapshot_id": snapshot.id,
            "state": snapshot.status,
            "description": snapshot.description or "",
            "has_content": (local / "snapshots" / snapshot.id).is_dir(),
        }
        for snapshot in list(backend.snapshots.values())
        if not snapshot.from_ami and snapshot.owner_id == ACCOUNT_ID
    ]
    domains = sorted(sdb_backends[ACCOUNT_ID][region].domains)
    return {"instances": instances, "volumes": volumes, "snapshots": snapshots, "domains": domains}


def reset_backends() -> None:
    """Forget every resource of every service."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


# ---- instances across restarts -------------------------------------------------------------------

HOST_DOWN_CODE = "Server.InternalError"
HOST_CRASHED = "Server.InternalError: the local cloud's host went down while the instance ran"
HOST_STOPPED = (
    "Server.InternalError: the local cloud was stopped (awsac local down) while the instance ran"
)
LIVE_STATES = ("pending", "running", "stopping", "shutting-down")
TERMINATED_KEPT_S = float(os.environ.get("AWSAC_LOCAL_TERMINATED_KEEP_S", "3600"))


def _ec2_regions() -> list[tuple[str, Any]]:
    from moto.ec2.models import ec2_backends

    return list(ec2_backends[ACCOUNT_ID].items())


def end_live_instances(message: str) -> list[str]:
    """Terminate every instance that is not stopped or terminated, with a host-down reason.

    A host that goes down takes its instances with it: they come back terminated, so a client
    sees their jobs lost, never stuck.
    """
    from moto.core.utils import utcnow
    from moto.ec2.models.instances import StateReason

    ended: list[str] = []
    for _region, backend in _ec2_regions():
        for reservation in list(backend.reservations.values()):
            for instance in list(reservation.instances):
                if instance._state.name not in LIVE_STATES:
                    continue
                instance.terminate()
                instance._reason = (
                    f"Server initiated ({utcnow().strftime('%Y-%m-%d %H:%M:%S UTC')})"
                )
                instance.state_reason = StateReason(message, HOST_DOWN_CODE)
                ended.append(instance.id)
    return ended


def purge_terminated(local: Path, keep_s: float = TERMINATED_KEPT_S) -> list[str]:
    """Forget terminated instances older than ``keep_s`` (EC2 shows them for about an hour)."""
    now = time.time()
    purged: list[str] = []
    for _region, backend in _ec2_regions():
        ended: dict[str, float] = backend.__dict__.setdefault("_awsac_terminated_at", {})
        for reservation_id, reservation in list(backend.reservations.items()):
            for instance in list(reservation.instances):
                if instance._state.name != "terminated":
                    continue
                at = ended.setdefault(instance.id, now)
                if now - at >= keep_s:
                    reservation.instances.remove(instance)
                    ended.pop(instance.id, None)
                    purged.append(instance.id)
            if not reservation.instances:
                del backend.reservations[reservation_id]
    for instance_id in purged:
        shutil.rmtree(local / "instances" / instance_id, ignore_errors=True)
    return purged


def forget_unknown_dirs(local: Path) -> None:
    """Remove instance and volume directories that EC2 no longer knows (left by a crash)."""
    instances = {
        i.id for _, b in _ec2_regions() for r in b.reservations.values() for i in r.instances
    }
    volumes = {v for _, b in _ec2_regions() for v in b.volumes}
    for kind, known in (("instances", instances), ("volumes", volumes)):
        directory = local / kind
        if directory.is_dir():
            for path in directory.iterdir():
                if path.is_dir() and path.name not in known:
                    shutil.rmtree(path, ignore_errors=True)


# ---- the WSGI app --------------------------------------------------------------------------------

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _query_error_body(code: str, message: str) -> bytes:
    """An error in the Query protocol's form (EC2, SimpleDB), which every botocore parser reads."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
        f"<Code>{xml_escape(code)}</Code><Message>{xml_escape(message)}</Message>"
        f"</Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode()


def _rest_error_body(code: str, message: str) -> bytes:
    """An error in S3's REST-XML form."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
        f"<Code>{xml_escape(code)}</Code><Message>{xml_escape(message)}</Message>"
        f"<RequestId>{uuid.uuid4()}</RequestId></Error>"
    ).encode()


def _is_query_request(environ: dict[str, Any]) -> bool:
    """Whether a request uses the Query protocol (form-encoded POST, or GET with Action=)."""
    content_type = environ.get("CONTENT_TYPE") or ""
    if content_type.startswith("application/x-www-form-urlencoded"):
        return True
    return "Action=" in (environ.get("QUERY_STRING") or "")


class LocalCloudApp:
    """moto's app plus side endpoints under /_awsac/ (health, status, config, reset, ...).

    Every request runs under BACKEND_LOCK (moto's backends are not thread-safe) and its response is
    read out while the lock is held; an exception inside moto becomes an AWS-shaped InternalError
    (HTTP 500, which botocore retries) instead of an HTML page that botocore cannot parse. The side
    endpoints answer only requests that carry the owner's token (403 otherwise; nothing is run).
    """

    def __init__(
        self, moto_app: WsgiApp, service: LocalCloudService, store: StateStore | None = None
    ) -> None:
        self.moto_app = moto_app  # moto's DomainDispatcherApplication (any WSGI app in tests)
        self.service = service
        self.store = store

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(SIDE_PREFIX):
            return self._side(environ, start_response, path[len(SIDE_PREFIX) :])
        params = simpledb.request_params(environ)
        if params is not None:
            return self._simpledb(environ, start_response, params)
        return self._moto(environ, start_response)

    def _simpledb(
        self, environ: dict[str, Any], start_response: Callable[..., Any], params: dict[str, str]
    ) -> list[bytes]:
        """SimpleDB's Query API, GET or POST (moto would send a GET to S3)."""
        units = self.store.simpledb_units(params) if self.store is not None else []
        try:
            with BACKEND_LOCK:
                status, body = simpledb.handle(params)
        except Exception as exc:
            log.exception("SimpleDB %s failed inside the emulator", params.get("Action"))
            return self._internal_error(environ, start_response, f"{type(exc).__name__}: {exc}")
        finally:
            if self.store is not None:
                self.store.commit(units)  # on disk before the answer (persistence.py)
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))],
        )
        return [body]

    def _moto(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.store is None:
            return self._moto_locked(environ, start_response)
        # what the request may change goes to disk before it is answered (persistence.py)
        units = self.store.units_of(environ, self.moto_app)
        try:
            return self._moto_locked(environ, start_response)
        finally:
            self.store.commit(units)

    def _moto_locked(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        answer: dict[str, Any] = {}
        chunks: list[bytes] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer["status"], answer["headers"] = status, headers
            return chunks.append

        try:
            with BACKEND_LOCK:
                result = self.moto_app(environ, capture)
                try:
                    chunks.extend(result)
                finally:
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
        except Exception as exc:  # moto raised: answer as AWS does, keep the trace in the log
            log.exception(
                "%s %s failed inside the emulator", environ.get("REQUEST_METHOD"), path_of(environ)
            )
            return self._internal_error(environ, start_response, f"{type(exc).__name__}: {exc}")
        status = answer.get("status", "500 INTERNAL SERVER ERROR")
        headers = answer.get("headers", [])
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        if status.startswith("5") and "html" in content_type:
            log.error(
                "%s %s: the emulator answered %s with an HTML page",
                environ.get("REQUEST_METHOD"),
                path_of(environ),
                status,
            )
            return self._internal_error(
                environ, start_response, "the emulator failed: see service.log"
            )
        start_response(status, headers)
        return chunks

    def _internal_error(
        self, environ: dict[str, Any], start_response: Callable[..., Any], message: str
    ) -> list[bytes]:
        query = _is_query_request(environ)
        body = (_query_error_body if query else _rest_error_body)("InternalError", message)
        start_response(
            "500 Internal Server Error",
            [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))],
        )
        return [body]

    def _side(self, environ: dict[str, Any], start_response: Callable[..., Any], name: str) -> Any:
        method = environ.get("REQUEST_METHOD", "GET")
        if not token_matches(environ.get(TOKEN_ENVIRON_KEY, ""), self.service.token):
            log.warning("refused %s %s%s: no valid owner token", method, SIDE_PREFIX, name)
            status, answer = (
                403,
                {
                    "error": f"the local cloud's side endpoints need its owner's token "
                    f"(header {SIDE_TOKEN_HEADER}, from {side_token_path(self.service.local)})"
                },
            )
        else:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            try:
                payload = json.loads(body) if body else {}
                status, answer = self.service.side_request(method, name, payload)
            except (ValueError, TypeError, KeyError) as exc:
                status, answer = 400, {"error": str(exc)}
        data = json.dumps(answer).encode()
        reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found"}.get(
            status, "Error"
        )
        start_response(
            f"{status} {reason}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
        )
        return [data]


def path_of(environ: dict[str, Any]) -> str:
    """The request's path and query, for the log."""
    query = environ.get("QUERY_STRING") or ""
    return environ.get("PATH_INFO", "") + (f"?{query[:200]}" if query else "")


class LocalCloudService:
    """The running service: server, runner, and the service.json it publishes."""

    def __init__(self, local: Path, boot_delay: float, boot_command: list[str]) -> None:
        self.local = local
        self.region = REGION
        self.boot_delay = boot_delay
        self.boot_command = boot_command
        self.image_id = ""
        self.endpoint = ""
        self.token = ""
        self.vm = False  # the runner: process machines, or QEMU VMs (--vm)
        self.store = StateStore(local / STATE_DIR_NAME, ACCOUNT_ID, BACKEND_LOCK)
        self.state: dict[str, Any] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "pid": os.getpid(),
            "region": self.region,
            "account_id": ACCOUNT_ID,
            "image_id": self.image_id,
            "state_dir": str(self.local.parent),
            "runner": "vm" if self.vm else "process",
            "state": self.state,
        }

    def publish(self) -> None:
        write_json_atomic(self.local / "service.json", self.info())

    def side_request(self, method: str, name: str, payload: dict[str, Any]) -> tuple[int, Any]:
        global _runner
        assert _runner is not None
        if name == "health":
            return 200, {
                **self.info(),
                "boot_delay": _runner.boot_delay,
                "boot_command": _runner.boot_command,
            }
        if name == "status":
            saving = {"saving_error": self.store.error, "writes": self.store.writes}
            with BACKEND_LOCK:
                return 200, {**self.info(), **saving, **backend_status(self.region, self.local)}
        if name == "config" and method == "POST":
            if payload.get("boot_delay") is not None:
                _runner.boot_delay = float(payload["boot_delay"])
            if payload.get("boot_command") is not None:
                command = payload["boot_command"]
                if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
                    raise ValueError("boot_command must be a list of strings")
                _runner.boot_command = list(command)
            if payload.get("shutdown_grace") is not None:
                grace = float(payload["shutdown_grace"])
                if not 0 < grace <= 600:
                    raise ValueError("shutdown_grace must be above 0 and at most 600 seconds")
                _runner.kill_grace = grace
            answer = {
                "boot_delay": _runner.boot_delay,
                "boot_command": _runner.boot_command,
                "shutdown_grace": _runner.kill_grace,
            }
            if payload.get("faults") is not None and _spot is not None:
                try:
                    answer["faults"] = _spot.configure(str(payload["faults"]))
                except AwsacError as exc:  # a rule that does not parse
                    return 400, {"error": str(exc)}
            return 200, answer
        if name == "interrupt" and method == "POST" and _spot is not None:
            notice = float(payload.get("notice", 120.0))
            try:
                return 200, _spot.interrupt(str(payload["instance_id"]), notice).as_dict()
            except InterruptError as exc:
                return exc.status, {"error": str(exc)}
        if name == "ec2":
            if method == "POST":
                with BACKEND_LOCK:
                    ec2.SETTINGS.update(payload)
            return 200, ec2.SETTINGS.as_dict()
        if name == "reset" and method == "POST":
            with self._lock, BACKEND_LOCK:
                if _spot is not None:
                    _spot.cancel_all()
                _runner.stop_all()
                _runner.wipe()
                reset_backends()
                self.store.wipe()
                remove_tree(self.local / "snapshots")
                (self.local / "snapshots").mkdir(parents=True, exist_ok=True)
                self.image_id = prepare_backends(self.region)
                self.store.write_all()
                self.state = {**self.state, "reset": True, "restored": False}
                self.publish()
            return 200, self.info()
        return 404, {"error": f"no side endpoint {method} {name}"}

    def restore(self) -> None:
        """Read the saved state back (or start empty); instances that were up are terminated."""
        global _store
        self.store.install()
        _store = self.store
        summary = self.store.restore()
        started, cpu = time.monotonic(), time.process_time()
        ended = end_live_instances(HOST_CRASHED)
        purge_terminated(self.local)
        forget_unknown_dirs(self.local)
        self.image_id = prepare_backends(self.region)
        self.store.write_all()
        self.store.start()
        summary.terminated_at_restore = ended
        if summary.restored:
            self.store.count_ec2(summary)
        self.state = {**summary.as_dict(), "saved_in": str(self.store.directory)}
        self.state["seconds"] = round(summary.seconds + time.monotonic() - started, 3)
        self.state["cpu_seconds"] = round(summary.cpu_seconds + time.process_time() - cpu, 3)
        log.info("state: %s", json.dumps(self.state))

    def housekeeping(self) -> None:
        """Forget terminated instances after an hour, as EC2 does."""
        with self.store.changing(*(("ec2", region) for region, _ in _ec2_regions())):
            purged = purge_terminated(self.local)
        if purged:
            log.info("forgot %d terminated instance(s): %s", len(purged), purged)

    def serve(self) -> None:
        """Run until SIGTERM/SIGINT; then end every instance and exit."""
        global _runner
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):
            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                pass

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # SimpleDB errors that botocore's model does not list (ConditionalCheckFailed, ...)
        warnings.filterwarnings("ignore", message=r".*does not match an error shape")
        install_dispatch_patches()
        ec2.install()  # first: the hooks below wrap its checks
        install_ec2_patches()
        self.restore()  # the saved state, or moto's default images for a new cloud
        (self.local / "snapshots").mkdir(parents=True, exist_ok=True)

        dispatcher = DomainDispatcherApplication(create_backend_app)
        app = LocalCloudApp(dispatcher, self, self.store)
        server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
        host, port = server.server_address[:2]
        self.endpoint = f"http://{host}:{port}"
        runner_class = InstanceRunner
        if self.vm:
            from awsac_tui.local.vm import VmRunner

            runner_class = VmRunner
        _runner = runner_class(
            self.local,
            endpoint=self.endpoint,
            region=self.region,
            boot_delay=self.boot_delay,
            boot_command=self.boot_command,
        )
        global _spot
        _spot = SpotInterrupter(_runner, self.store.changing)
        try:
            _spot.configure(os.environ.get("AWSAC_FAULTS", ""))
        except AwsacError as exc:  # a rule that does not parse: say so, run without it
            log.error("%s", exc)
        signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        signal.signal(signal.SIGINT, lambda *_: self._stop.set())
        thread = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
        thread.start()
        self.token = write_side_token(self.local)  # before service.json: a client needs both
        self.publish()
        log.info("local cloud at %s (pid %s)", self.endpoint, os.getpid())
        last_purge = time.monotonic()
        while not self._stop.wait(0.2):
            if time.monotonic() - last_purge > 60:
                last_purge = time.monotonic()
                self.housekeeping()
        log.info("stopping: ending every instance")
        _spot.cancel_all()
        _runner.stop_all()
        server.shutdown()
        with BACKEND_LOCK:
            ended = end_live_instances(HOST_STOPPED)
        self.store.write_all()
        self.store.stop()
        log.info("state saved in %s (%d instance(s) terminated)", self.store.directory, len(ended))
        try:
            data = json.loads((self.local / "service.json").read_text())
            if data.get("pid") == os.getpid():
                (self.local / "service.json").unlink()
        except (OSError, ValueError):
            pass
        log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m awsac_tui.local.server")
    parser.add_argument("--local-dir", required=True, type=Path)
    parser.add_argument("--boot-delay", type=float, default=1.0)
    parser.add_argument("--boot-command", required=True, help="JSON list")
    parser.add_argument("--vm", action="store_true", help="instances are QEMU VMs (vm.py)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("AWS_ACCESS_KEY_ID", DUMMY_ACCESS_KEY_ID)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET_ACCESS_KEY)
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    args.local_dir.mkdir(parents=True, exist_ok=True)
    service = LocalCloudService(args.local_dir, args.boot_delay, json.loads(args.boot_command))
    service.vm = args.vm
    try:
        service.store.check_manifest()  # refuse at once, before loading moto
        service.serve()
    except StateError as exc:
        print(f"{STATE_ERROR_MARK}{exc}", file=sys.stderr, flush=True)
        return STATE_ERROR_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
