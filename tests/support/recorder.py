"""A tiny local HTTP server that records every request it gets (method, path, query,
headers, decoded body) and answers a fixed status.

Used as the "evil" model server (did Rasa fetch a URL a request supplied?) and as a fake
Sentry ingestion endpoint (what exactly would leave the gateway?). Standard library only,
so it runs in either environment.
"""

from __future__ import annotations

import gzip
import http.server
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: Dict[str, str]
    body: str


class RequestRecorder:
    """`with RequestRecorder(status=404) as rec:` ... `rec.requests`; `rec.url` is the root."""

    def __init__(self, status: int = 200, body: bytes = b"{}") -> None:
        self.requests: List[RecordedRequest] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    raw = gzip.decompress(raw)
                elif encoding == "deflate":
                    raw = zlib.decompress(raw)
                recorder.requests.append(
                    RecordedRequest(self.command, self.path, dict(self.headers), raw.decode("utf-8", "replace"))
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_HEAD = _record  # noqa: N815

            def log_message(self, *args: object) -> None:  # quiet
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "RequestRecorder":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(
        self, count: int = 1, timeout: float = 20.0, path_contains: Optional[str] = None
    ) -> List[RecordedRequest]:
        """The requests received (optionally only those to a path), once at least `count`
        arrived or the time is up."""
        deadline = time.monotonic() + timeout
        while True:
            got = [r for r in self.requests if path_contains is None or path_contains in r.path]
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.1)


__all__ = ["RecordedRequest", "RequestRecorder"]
