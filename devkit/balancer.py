"""A small local HTTP load balancer (reverse proxy, round robin) for scale tests and benches.

Stands in for the load balancer a deployment puts in front of several gateway instances
(LINE webhooks) or several Rasa servers (the gateways' RASA_URL). Each request goes to the
next upstream in turn; method, path, query, headers (minus hop-by-hop ones) and body are
passed on, the upstream's status, headers and body come back (buffered: webhooks and Rasa
answers are small).

An upstream that refuses the connection is skipped and the request goes to the next one
(nothing reached it, so resending is safe even for a POST); any other failure answers 502,
because the upstream may already have acted on the request.

    python -m devkit.balancer --port 8000 \
        --upstream http://127.0.0.1:8081 --upstream http://127.0.0.1:8082

`GET /_balancer/stats` (not proxied) -> {"upstreams": [...], "sent": [n, ...], "refused": [...]}.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
from typing import List, Optional, Sequence

import aiohttp
from aiohttp import web

log = logging.getLogger(__name__)

# RFC 9110 hop-by-hop headers, plus what aiohttp computes itself for the new message.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
STATS_PATH = "/_balancer/stats"


class RoundRobinProxy:
    """The proxy's state: upstream base URLs, the rotation and per-upstream counters."""

    def __init__(self, upstreams: Sequence[str], timeout_s: float = 60.0) -> None:
        if not upstreams:
            raise ValueError("at least one upstream is needed")
        self.upstreams: List[str] = [u.rstrip("/") for u in upstreams]
        self.sent: List[int] = [0] * len(self.upstreams)
        self.refused: List[int] = [0] * len(self.upstreams)
        self._turn = itertools.cycle(range(len(self.upstreams)))
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=3.0)
        self._session: Optional[aiohttp.ClientSession] = None
        self.app = self._make_app()

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_get(STATS_PATH, self._stats)
        app.router.add_route("*", "/{tail:.*}", self._proxy)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # no cookie jar: the proxy must not mix clients' cookies; no auto decompression:
            # the body goes back byte for byte with its Content-Encoding
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                connector=aiohttp.TCPConnector(limit=0),
            )
        return self._session

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({"upstreams": self.upstreams, "sent": self.sent, "refused": self.refused})

    async def _proxy(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["X-Forwarded-For"] = request.remote or ""
        first = next(self._turn)
        for attempt in range(len(self.upstreams)):
            index = (first + attempt) % len(self.upstreams)
            url = self.upstreams[index] + request.rel_url.raw_path_qs
            try:
                async with self._client().request(
                    request.method, url, data=body, headers=headers, allow_redirects=False
                ) as upstream:
                    payload = await upstream.read()
                    self.sent[index] += 1
                    out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
                    out_headers["X-Upstream"] = str(index)
                    return web.Response(status=upstream.status, body=payload, headers=out_headers)
            except aiohttp.ClientConnectorError:
                # nothing reached this upstream (down or restarting): the next one may take it
                self.refused[index] += 1
                continue
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                # the upstream may have acted on the request: resending could do it twice
                log.warning("upstream %d failed (%s)", index, type(exc).__name__)
                return web.json_response({"message": "bad gateway"}, status=502)
        return web.json_response({"message": "no upstream available"}, status=502)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Round-robin HTTP reverse proxy (local scale tests)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", action="append", required=True, help="base URL of an upstream; repeat for each")
    parser.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    proxy = RoundRobinProxy(args.upstream, timeout_s=args.timeout)
    try:
        import uvloop  # the gateway's loop: less CPU per proxied request

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    web.run_app(proxy.app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()


__all__: List[str] = ["HOP_BY_HOP", "RoundRobinProxy", "main"]
