"""A small synchronous QMP client: the VM runner's line to each QEMU (hot-plug, power, quit).

One short connection per operation (QEMU's QMP socket serves one client at a time); events that
arrive while a command waits are kept, so ``device_del`` can wait for ``DEVICE_DELETED``.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from awsac_agent.errors import AwsacError


class QmpError(AwsacError):
    """QEMU's monitor could not be reached, or it refused a command."""


class Qmp:
    """A connection to one QEMU's QMP socket (a context manager)."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._sock: socket.socket | None = None
        self._buffer = b""

    # Unix socket paths are limited to 108 bytes; a state dir can be deeper than that, so the
    # socket is reached through its directory's file descriptor (/proc/self/fd/N/name).
    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            sock.connect(f"/proc/self/fd/{dir_fd}/{self.path.name}")
        except OSError as exc:
            sock.close()
            raise QmpError(f"QEMU monitor {self.path}: cannot connect ({exc})") from exc
        finally:
            os.close(dir_fd)
        return sock

    def __enter__(self) -> Qmp:
        self._sock = self._connect()
        greeting = self._read()
        if "QMP" not in greeting:
            self.close()
            raise QmpError(f"QEMU monitor {self.path}: unexpected greeting {greeting}")
        self.execute("qmp_capabilities")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _read(self, deadline: float | None = None) -> dict[str, Any]:
        assert self._sock is not None
        while b"\n" not in self._buffer:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                raise
            except OSError as exc:
                raise QmpError(f"QEMU monitor {self.path}: {exc}") from exc
            if not chunk:
                raise QmpError(f"QEMU monitor {self.path}: connection closed")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command: str, **arguments: Any) -> Any:
        """Run ``command`` and return its result; QmpError with QEMU's description on error."""
        assert self._sock is not None
        message: dict[str, Any] = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        self._sock.sendall(json.dumps(message).encode() + b"\n")
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                reply = self._read(deadline)
            except TimeoutError as exc:
                raise QmpError(f"QEMU monitor {self.path}: no answer to {command}") from exc
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                error = reply["error"]
                raise QmpError(
                    f"QEMU refused {command}: {error.get('desc', error)} ({error.get('class')})"
                )
            return reply.get("return")

    def wait_event(self, name: str, timeout: float, **data: Any) -> dict[str, Any] | None:
        """The first event ``name`` whose data contains ``data``, or None after ``timeout`` s."""

        def matches(event: dict[str, Any]) -> bool:
            got = event.get("data", {})
            return event.get("event") == name and all(got.get(k) == v for k, v in data.items())

        for event in self.events:
            if matches(event):
                return event
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self._read(deadline)
            except TimeoutError:
                return None
            if "event" in event:
                self.events.append(event)
                if matches(event):
                    return event
