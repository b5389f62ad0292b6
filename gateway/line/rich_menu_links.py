"""Which rich menu a customer sees: the account's default (Japanese, set by
`make rich-menu`, gateway/line/rich_menu.py) unless their LINE profile speaks another
language that has a menu of its own (English), which is then linked to them.

When: on follow and on the first event the gateway handles from a customer (the
processor calls `note` with the profile it read anyway), in the background: a link never
delays or fails the turn; a failure is logged and tried again on a later event.

Once: the menu linked to each user is remembered in an in-process bounded cache (LRU of
`max_users`); linking the same menu again is harmless, so several replicas or a restart
only cost one more call per customer. The menus are found by name
(`order-support:<lang>:<content hash>`) in GET /v2/bot/richmenu/list, cached for
`list_ttl_s`; after `make rich-menu` replaced the menus (a new hash, the old ones deleted,
which also unlinks them on LINE), a customer whose remembered menu is no longer the
current one is linked again on their next event.

Only 1:1 chats have rich menus; a customer whose language has no menu of its own keeps the
default (a menu linked earlier is not unlinked).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Set, Tuple

from gateway.line.api import LineApi, LineApiError

log = logging.getLogger(__name__)

# Every rich menu this project creates is named "<prefix><lang>:<hash>"; `make rich-menu`
# deletes only menus with this prefix, so menus made by other means are left alone.
MENU_PREFIX = "order-support:"
DEFAULT_LANGUAGE = "ja"
FAILED_LIST_TTL_S = 30.0


def menu_name(language: str, content_hash: str) -> str:
    return f"{MENU_PREFIX}{language}:{content_hash}"


def parse_menu_name(name: str) -> Optional[Tuple[str, str]]:
    """(language, content hash) of one of our menus' names, None for anyone else's."""
    if not name.startswith(MENU_PREFIX):
        return None
    language, sep, content_hash = name[len(MENU_PREFIX) :].partition(":")
    return (language, content_hash) if sep and language and content_hash else None


class RichMenuLinks:
    def __init__(
        self,
        line: LineApi,
        *,
        list_ttl_s: float = 300.0,
        max_users: int = 50000,
        default_language: str = DEFAULT_LANGUAGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._line = line
        self._ttl = list_ttl_s
        self._max = max_users
        self._default_language = default_language
        self._clock = clock
        self._menus: Optional[Dict[str, str]] = None  # language -> rich menu id
        self._menus_until = 0.0
        self._menus_lock = asyncio.Lock()
        self._linked: "OrderedDict[str, str]" = OrderedDict()  # user -> rich menu id linked
        self._busy: Set[str] = set()  # users being linked now
        self._tasks: Set[asyncio.Task] = set()
        self.stats = {"linked": 0, "failed": 0}

    def note(self, user_id: str, language: str) -> None:
        """The processor read this customer's profile: link their language's menu in the
        background if it is not the default's and not linked yet."""
        if not user_id or language == self._default_language or user_id in self._busy:
            return
        if self._fresh():
            current = (self._menus or {}).get(language)
            if current is None or self._linked.get(user_id) == current:
                return  # no menu of its own for this language, or linked already
        self._busy.add(user_id)
        task = asyncio.get_running_loop().create_task(self._ensure(user_id, language))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the links under way (tests; shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def ensure(self, user_id: str, language: str) -> Optional[str]:
        """Link the menu of `language` to the user unless it is linked already; the menu id
        linked (or already linked), None when there is none for the language."""
        menu = await self.menu_for(language)
        if menu is None:
            return None
        if self._linked.get(user_id) == menu:
            self._linked.move_to_end(user_id)
            return menu
        try:
            await self._line.link_rich_menu(user_id, menu, retry=False)
        except LineApiError as exc:
            if exc.status != 404:
                raise
            # the menu was deleted since the list was read (make rich-menu ran): read it again
            self._menus = None
            menu = await self.menu_for(language)
            if menu is None:
                return None
            await self._line.link_rich_menu(user_id, menu, retry=False)
        self._linked[user_id] = menu
        self._linked.move_to_end(user_id)
        while len(self._linked) > self._max:
            self._linked.popitem(last=False)
        self.stats["linked"] += 1
        log.info("rich menu for language %s linked to a customer", language)
        return menu

    async def _ensure(self, user_id: str, language: str) -> None:
        try:
            await self.ensure(user_id, language)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never the turn's problem
            self.stats["failed"] += 1
            status = getattr(exc, "status", None)
            log.warning(
                "rich menu not linked (%s%s); tried again later",
                type(exc).__name__,
                f" HTTP {status}" if status else "",
            )
        finally:
            self._busy.discard(user_id)

    def _fresh(self) -> bool:
        return self._menus is not None and self._clock() < self._menus_until

    async def menu_for(self, language: str) -> Optional[str]:
        """The current rich menu id of `language` (ours, by name), from the cached list."""
        async with self._menus_lock:
            if not self._fresh():
                try:
                    self._menus = await self._read_menus()
                    self._menus_until = self._clock() + self._ttl
                except LineApiError:
                    # LINE unavailable: not asked again for a while (a stale list serves)
                    self._menus_until = self._clock() + min(self._ttl, FAILED_LIST_TTL_S)
                    if self._menus is None:
                        self._menus = {}
                        raise
            return (self._menus or {}).get(language)

    async def _read_menus(self) -> Dict[str, str]:
        by_language: Dict[str, List[Tuple[str, str]]] = {}  # language -> [(hash, id)]
        for m in await self._line.rich_menus():
            parsed = parse_menu_name(str(m.get("name") or ""))
            if parsed and m.get("richMenuId"):
                by_language.setdefault(parsed[0], []).append((parsed[1], str(m["richMenuId"])))
        chosen: Dict[str, str] = {}
        default_hash: Optional[str] = None
        if any(len(v) > 1 for v in by_language.values()):
            # while make rich-menu replaces the menus, old and new are both listed: take the
            # ones of the same version as the default menu
            default_id = await self._line.default_rich_menu()
            default_hash = next(
                (h for v in by_language.values() for h, i in v if i == default_id),
                None,
            )
        for language, menus in by_language.items():
            same = [i for h, i in menus if h == default_hash]
            chosen[language] = same[0] if same else menus[-1][1]
        return chosen


__all__ = ["DEFAULT_LANGUAGE", "MENU_PREFIX", "RichMenuLinks", "menu_name", "parse_menu_name"]
