"""The agents' desk in Slack: posts and updates case cards and threads (slack_sdk's async
Web API client), and answers who an agent is and whether they may act on cases.

Every Web API failure becomes `AgentDeskError`, so the case logic (gateway/core/handoff.py)
keeps the case and retries instead of losing it. 429 and 5xx are retried by slack_sdk's
retry handlers first (Retry-After is honoured).
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from gateway.core.cases import Case
from gateway.core.handoff import AgentDeskError
from gateway.slack.cards import case_card, escalation_message, transcript_messages

log = logging.getLogger(__name__)
MEMBERS_TTL_S = 60.0
SLACK_TS = re.compile(r"\d+\.\d+")  # a message's ts ("1764090000.000100")
NAMES_TTL_S = 3600.0


def make_web_client(token: str, base_url: str) -> AsyncWebClient:
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=10,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=2),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def _plain(text: str) -> str:
    """Text shown as written: only &, < and > are special in Slack's mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _error_of(exc: SlackApiError) -> str:
    """Slack's error code, or the HTTP status when the body was not JSON (e.g. a 5xx page)."""
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return f"HTTP {getattr(exc.response, 'status_code', '?')}"


class SlackDesk:
    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        *,
        oncall_mention: str = "<!here>",
        supervisor_channel: Optional[str] = None,
        supervisor_ids: Sequence[str] = (),
    ) -> None:
        self.client = client
        self.channel = channel
        self.oncall_mention = oncall_mention
        # Escalate posts there; without one, a broadcast from the case's thread
        self.supervisor_channel = supervisor_channel
        self.supervisor_ids = tuple(supervisor_ids)
        self._members: Tuple[float, frozenset] = (0.0, frozenset())
        self._names: Dict[str, Tuple[float, str]] = {}

    async def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            # the typed methods send each argument the way Slack expects for that method
            # (JSON for writes, form/query for reads)
            return await getattr(self.client, method.replace(".", "_"))(**kwargs)
        except SlackApiError as exc:
            raise AgentDeskError(f"Slack {method}: {_error_of(exc)}") from None
        except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise AgentDeskError(f"Slack {method}: {type(exc).__name__}") from None

    # --- AgentDesk -------------------------------------------------------------------------
    async def post_case(self, case: Case) -> Tuple[str, str]:
        card = case_card(case)
        if self.oncall_mention:
            card["text"] = f"{self.oncall_mention} {card['text']}"
            card["blocks"].insert(
                1,
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": f"{self.oncall_mention} a customer needs a person."},
                },
            )
        response = await self._call("chat.postMessage", channel=self.channel, unfurl_links=False, **card)
        channel, ts = response["channel"], response["ts"]
        thread = Case.from_json(case.to_json())
        thread.channel, thread.thread_ts = channel, ts
        try:
            for message in transcript_messages(thread):
                await self._call("chat.postMessage", channel=channel, thread_ts=ts, **message)
        except AgentDeskError as exc:
            # The card is up: raising now would make the caller post the whole case again
            # (a second card). The summary is on the card and the history in Rasa's tracker.
            log.warning("case card posted but its transcript is incomplete (%s)", exc)
        return channel, ts

    async def update_card(self, case: Case) -> None:
        if not case.thread_ts:
            return
        await self._call("chat.update", channel=case.channel, ts=case.thread_ts, **case_card(case))

    async def post_in_thread(self, case: Case, text: str, *, broadcast: bool = False) -> None:
        if not case.thread_ts:
            raise AgentDeskError("the case has no thread yet")
        if broadcast and self.oncall_mention:
            text = f"{self.oncall_mention} {text}"
        await self._call(
            "chat.postMessage",
            channel=case.channel,
            thread_ts=case.thread_ts,
            text=text,
            reply_broadcast=broadcast,
            unfurl_links=False,
        )

    async def post_photo(self, case: Case, photo: Dict[str, Any]) -> None:
        if not case.thread_ts:
            raise AgentDeskError("the case has no thread yet")
        path = Path(photo.get("path") or "")
        if not path.is_file():
            await self.post_in_thread(case, "📷 The customer sent a photo, but its file is gone.")
            return
        await self._call(
            "files.upload_v2",
            channel=case.channel,
            thread_ts=case.thread_ts,
            file=str(path),
            filename=path.name,
            title="Photo from the customer / お客様の写真",
            initial_comment="📷 Photo from the customer / お客様の写真",
        )

    async def mark_delivered(self, case: Case, message_ts: str, delivered: bool) -> None:
        # a reply sent from a modal has no message of its own to react to (its key is the view id)
        if SLACK_TS.fullmatch(message_ts or ""):
            await self._call(
                "reactions.add",
                channel=case.channel,
                timestamp=message_ts,
                name="white_check_mark" if delivered else "x",
            )
        if not delivered:
            await self.post_in_thread(
                case, "⚠️ That reply could not be delivered on LINE; please try again in a moment."
            )

    async def escalate(self, case: Case, agent_name: str) -> None:
        """The case's summary for the supervisors, with where its thread is: in the
        supervisors' channel, or (none set) broadcast from the thread to the handoff channel."""
        if not case.thread_ts:
            raise AgentDeskError("the case has no thread yet")
        permalink = None
        try:
            permalink = (await self._call("chat.getPermalink", channel=case.channel, message_ts=case.thread_ts)).get(
                "permalink"
            )
        except AgentDeskError as exc:
            log.info("no permalink for the escalated case (%s)", exc)
        mention = " ".join(f"<@{u}>" for u in self.supervisor_ids)
        message = escalation_message(case, agent_name, permalink, mention)
        if self.supervisor_channel:
            await self._call("chat.postMessage", channel=self.supervisor_channel, unfurl_links=False, **message)
            return
        await self._call(
            "chat.postMessage",
            channel=case.channel,
            thread_ts=case.thread_ts,
            reply_broadcast=True,
            unfurl_links=False,
            **message,
        )

    async def open_view(self, trigger_id: str, view: Dict[str, Any]) -> Dict[str, Any]:
        """Opens a modal for the person whose click carried `trigger_id` (valid 3 s, once)."""
        return (await self._call("views.open", trigger_id=trigger_id, view=view)).get("view") or {}

    async def warn_agent(self, case: Case, agent_id: str, text: str) -> None:
        """A note in the case's thread that only `agent_id` sees (chat.postEphemeral; the
        agent must be in the channel). `text` is plain: Slack's special characters are escaped."""
        if not case.thread_ts:
            raise AgentDeskError("the case has no thread yet")
        await self._call(
            "chat.postEphemeral",
            channel=case.channel,
            user=agent_id,
            thread_ts=case.thread_ts,
            text=_plain(text),
        )

    # --- who may act -------------------------------------------------------------------------
    async def is_member(self, user_id: Optional[str]) -> bool:
        """Only members of the handoff channel may act on cases (cached for a minute)."""
        if not user_id:
            return False
        fetched_at, members = self._members
        if time.monotonic() - fetched_at > MEMBERS_TTL_S:
            found, cursor = set(), None
            while True:
                args: Dict[str, Any] = {"channel": self.channel, "limit": 200}
                if cursor:
                    args["cursor"] = cursor
                response = await self._call("conversations.members", **args)
                found.update(response.get("members") or [])
                cursor = (response.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
            members = frozenset(found)
            self._members = (time.monotonic(), members)
        return user_id in members

    async def agent_name(self, user_id: str) -> str:
        """The agent's Slack name (shown to the customer and on the card), never "Bot"."""
        hit = self._names.get(user_id)
        if hit and time.monotonic() - hit[0] < NAMES_TTL_S:
            return hit[1]
        try:
            user = (await self._call("users.info", user=user_id)).get("user") or {}
        except AgentDeskError:
            return hit[1] if hit else user_id
        profile = user.get("profile") or {}
        name = (
            profile.get("display_name")
            or profile.get("real_name")
            or user.get("real_name")
            or user.get("name")
            or user_id
        )
        self._names[user_id] = (time.monotonic(), name)
        return name


class UnconfiguredDesk:
    """Used when no Slack credentials are set: cases are kept, nothing is posted."""

    async def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise AgentDeskError("Slack is not configured (SLACK_BOT_TOKEN)")

    post_case = update_card = post_in_thread = post_photo = mark_delivered = _fail
    warn_agent = escalate = open_view = _fail


__all__ = ["SlackDesk", "UnconfiguredDesk", "make_web_client"]
