"""Who is writing: a LINE user's profile (name, language), cached for the gateway."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any, Callable, Dict, Optional, Tuple

from gateway.line.api import LineApi, LineApiError

log = logging.getLogger(__name__)


def language_of(profile: Optional[Dict[str, Any]]) -> str:
    lang = str((profile or {}).get("language") or "")
    return "en" if lang.lower().startswith("en") else "ja"


class ProfileCache:
    """A LINE user's profile, cached (profiles change rarely; the API is rate-limited): a
    group or room member's from that chat's member endpoint, a friend's from
    /v2/bot/profile (which serves friends only); see LineApi.profile."""

    def __init__(
        self,
        line: LineApi,
        ttl_s: float = 3600.0,
        negative_ttl_s: float = 60.0,
        max_size: int = 50000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._line = line
        self._ttl = ttl_s
        self._neg_ttl = negative_ttl_s
        self._max = max_size
        self._clock = clock
        self._cache: "OrderedDict[Tuple[str, str, str], Tuple[float, Optional[Dict[str, Any]]]]" = OrderedDict()

    async def get(
        self, user_id: str, *, group_id: Optional[str] = None, room_id: Optional[str] = None
    ) -> Optional[Dict[str, Any]]:
        key = (user_id, group_id or "", room_id or "")  # one profile per endpoint
        hit = self._cache.get(key)
        now = self._clock()
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            profile = await self._line.profile(user_id, group_id=group_id, room_id=room_id)
        except LineApiError as exc:
            log.warning("profile unavailable (HTTP %s); using defaults", exc.status)
            return hit[1] if hit is not None else None  # stale beats nothing
        self._cache[key] = (now + (self._ttl if profile else self._neg_ttl), profile)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return profile
