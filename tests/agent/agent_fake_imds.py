"""A stand-in IMDSv2 endpoint for the agent's unit tests (token flow, meta-data, user-data)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeImds:
    """Answers IMDSv2 requests from ``paths`` (path -> text or JSON-able); counts requests."""

    TOKEN = "test-token"

    def __init__(self, paths: dict[str, Any], fail_first: int = 0) -> None:
        self.paths = dict(paths)
        self.fail_first = fail_first
        self.requests: list[tuple[str, str, str | None]] = []
        self.endpoint = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def _send(self, code: int, body: str) -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:  # noqa: N802
                owner.requests.append(("PUT", self.path, None))
                if owner.fail_first > 0:
                    owner.fail_first -= 1
                    self._send(503, "busy")
                elif self.path == "/latest/api/token" and self.headers.get(
                    "X-aws-ec2-metadata-token-ttl-seconds"
                ):
                    self._send(200, owner.TOKEN)
                else:
                    self._send(400, "bad token request")

            def do_GET(self) -> None:  # noqa: N802
                token = self.headers.get("X-aws-ec2-metadata-token")
                owner.requests.append(("GET", self.path, token))
                if token != owner.TOKEN:
                    self._send(401, "no token")
                    return
                value = owner.paths.get(self.path)
                if value is None:
                    self._send(404, "Not Found")
                elif isinstance(value, str):
                    self._send(200, value)
                else:
                    self._send(200, json.dumps(value))

        return Handler


@contextmanager
def serve(paths: dict[str, Any], fail_first: int = 0) -> Iterator[FakeImds]:
    """Run a FakeImds on 127.0.0.1 for the duration of the block."""
    fake = FakeImds(paths, fail_first)
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.endpoint = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
