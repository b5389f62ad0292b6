"""Is the bot ready? Rasa (GET / and the token-protected /status) and the action server
(GET /health). Used by GET /healthz, by the pre-check before a message goes to Rasa and by
the retry loop before it re-sends pending messages.

URLs (Rasa's carries its token) are never logged.
"""

from __future__ import annotations

import asyncio
import time
from typing import Dict, Optional

import aiohttp


class HealthChecker:
    def __init__(
        self,
        rasa_url: str,
        rasa_token: Optional[str],
        action_health_url: str,
        session: Optional[aiohttp.ClientSession] = None,
        timeout_s: float = 2.0,
        positive_cache_s: float = 2.0,
    ) -> None:
        self._rasa = rasa_url.rstrip("/")
        self._token = rasa_token
        self._action = action_health_url
        self._session = session
        self._own_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._cache_s = positive_cache_s
        self._action_ok_until = 0.0

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._own_session = True
        return self._session

    async def _ok(self, url: str, params: Optional[Dict[str, str]] = None) -> bool:
        try:
            async with self._get_session().get(url, params=params, timeout=self._timeout) as r:
                await r.read()
                return r.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return False

    async def rasa(self) -> bool:
        params = {"token": self._token} if self._token else None
        root, status = await asyncio.gather(self._ok(self._rasa + "/"), self._ok(self._rasa + "/status", params))
        return root and status

    async def action_server(self, use_cache: bool = False) -> bool:
        if use_cache and time.monotonic() < self._action_ok_until:
            return True
        ok = await self._ok(self._action)
        self._action_ok_until = time.monotonic() + self._cache_s if ok else 0.0
        return ok

    async def check(self) -> Dict[str, bool]:
        rasa, action = await asyncio.gather(self.rasa(), self.action_server())
        return {"rasa": rasa, "action_server": action}

    async def ready(self) -> bool:
        return all((await self.check()).values())

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
            self._session = None
