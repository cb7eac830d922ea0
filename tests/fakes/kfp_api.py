"""A loopback HTTP server speaking the few KFP v2beta1 REST endpoints ``kfp.Client`` calls to
create runs and recurring runs; it records every request so tests can inspect the bodies."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None


@dataclass
class FakeKfpApi:
    requests: list[Recorded] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}"

    def bodies(self, method: str, suffix: str) -> list[dict[str, Any]]:
        return [
            r.body or {}
            for r in self.requests
            if r.method == method and r.path.split("?")[0].endswith(suffix)
        ]

    def __enter__(self) -> FakeKfpApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                api.requests.append(Recorded(self.command, self.path, dict(self.headers), body))
                path = self.path.split("?")[0]
                if path.endswith("/healthz"):
                    out: dict[str, Any] = {"multi_user": False}
                elif path.endswith("/experiments") and self.command == "GET":
                    out = {"experiments": []}
                elif path.endswith("/experiments"):
                    out = {"experiment_id": "exp-1", "display_name": body["display_name"]}
                elif path.endswith("/recurringruns"):
                    out = {"recurring_run_id": "rr-1", "display_name": body["display_name"]}
                elif path.endswith("/runs"):
                    out = {"run_id": "run-1", "display_name": body["display_name"]}
                else:
                    self.send_error(404, f"fake KFP API has no {path}")
                    return
                data = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
