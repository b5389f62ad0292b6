"""The workbench's reader of the two ops APIs, over HTTP (issue 14: the devkit imports
neither bot.store nor the gateway's case store):

    the action server   GET /ops/cases, /ops/audit, /ops/follow_ups, /ops/recurring_alerts
                        (bot/server/ops.py: the orders database, the audit)
    the gateway         GET /ops/cases (gateway/ops.py: the live open / claimed cases),
                        /ops/follow_ups (follow-ups skipped for the push budget, by month)

Both take OPS_API_TOKEN as a Bearer token (the workbench reads it from its environment;
devkit/stack.py gives the same one to every process it starts). Rows come back as the
contracts.ops shapes; a server that is down, refuses or is switched off raises
OpsUnavailable with a short reason the page shows (never the token).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Dict, List, Optional

import aiohttp

from contracts.ops import CaseRow, FollowUps, LiveCase, RecurringAlertRow


class OpsUnavailable(Exception):
    """The ops API did not answer with data: `reason` is one of unreachable, refused, off,
    failed (what the page says)."""

    def __init__(self, server: str, reason: str, detail: str = "") -> None:
        super().__init__(f"{server}: {reason}{f' ({detail})' if detail else ''}")
        self.server, self.reason, self.detail = server, reason, detail


def _period(lo: Optional[datetime], hi: Optional[datetime]) -> Dict[str, str]:
    query = {}
    if lo is not None:
        query["from"] = lo.isoformat()
    if hi is not None:
        query["to"] = hi.isoformat()
    return query


class OpsClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        action_server_url: str,
        gateway_url: str,
        token: str,
        timeout_s: float = 20,
    ) -> None:
        self.session = session
        self.action_server_url = action_server_url.rstrip("/")
        self.gateway_url = gateway_url.rstrip("/")
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def _get(self, server: str, base: str, path: str, query: Dict[str, str]) -> Dict[str, Any]:
        if not self.token:
            raise OpsUnavailable(server, "off", "OPS_API_TOKEN is not set")
        try:
            async with self.session.get(
                f"{base}{path}",
                params=query,
                headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"},
                timeout=self.timeout,
            ) as response:
                if response.status in (401, 403):
                    raise OpsUnavailable(server, "refused", str(response.status))
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
                if response.status == 503:
                    error = body.get("error", "") if isinstance(body, dict) else ""
                    raise OpsUnavailable(server, "off" if "OPS_API_TOKEN" in error else "failed", str(error))
                if response.status != 200 or not isinstance(body, dict):
                    raise OpsUnavailable(server, "failed", str(response.status))
                return body
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise OpsUnavailable(server, "unreachable", type(error).__name__) from None

    async def _bot(self, path: str, lo: Optional[datetime], hi: Optional[datetime]) -> Dict[str, Any]:
        return await self._get("action server", self.action_server_url, path, _period(lo, hi))

    async def cases(self, lo: Optional[datetime], hi: Optional[datetime]) -> List[CaseRow]:
        body = await self._bot("/ops/cases", lo, hi)
        return [CaseRow.from_dict(c) for c in body.get("cases") or []]

    async def live_cases(self) -> List[LiveCase]:
        body = await self._get("gateway", self.gateway_url, "/ops/cases", {})
        return [LiveCase.from_dict(c) for c in body.get("cases") or []]

    async def skipped_for_budget(self, lo: Optional[datetime], hi: Optional[datetime]) -> int:
        """Follow-ups the gateway skipped because the push budget was spent, over the quota
        months [lo, hi) touches (the gateway counts per month, not per case)."""
        body = await self._get("gateway", self.gateway_url, "/ops/follow_ups", _period(lo, hi))
        return int(body.get("skipped_budget") or 0)

    async def audit(self, lo: Optional[datetime], hi: Optional[datetime]) -> Dict[str, Any]:
        """The audit as JSON (bot.audit's result: findings with case, pattern, turn; counts)."""
        return await self._bot("/ops/audit", lo, hi)

    async def follow_ups(self, lo: Optional[datetime], hi: Optional[datetime]) -> FollowUps:
        return FollowUps.from_dict(await self._bot("/ops/follow_ups", lo, hi))

    async def recurring_alerts(self, lo: Optional[datetime], hi: Optional[datetime]) -> List[RecurringAlertRow]:
        body = await self._bot("/ops/recurring_alerts", lo, hi)
        return [RecurringAlertRow.from_dict(a) for a in body.get("alerts") or []]


__all__ = ["OpsClient", "OpsUnavailable"]
