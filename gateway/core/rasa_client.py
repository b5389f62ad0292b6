"""Client for Rasa's REST channel: POST {RASA_URL}/webhooks/rest/webhook.

Why a clear error split: when Rasa (or the action server behind it) is unreachable the
gateway must apologise to the customer and keep the message pending for a retry, never
drop it. `RasaUnavailable` means "try again later" (connection refused, timeout, 5xx);
`RasaRejected` means retrying the same request won't help (4xx, e.g. a wrong token).

Rasa's token travels as `?token=` in the URL (CVE-2024-49375 hardening requires one), so
no URL ever goes into an exception message or a log line, and exceptions are raised
`from None` so aiohttp's (URL-bearing) errors don't ride along to Sentry.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Dict, List, Optional
from urllib.parse import quote

import aiohttp

REST_PATH = "/webhooks/rest/webhook"


class RasaError(Exception):
    """Base class for Rasa call failures."""


class RasaUnavailable(RasaError):
    """Rasa did not answer usefully (down, timed out, 5xx): keep the message and retry."""


class RasaRejected(RasaError):
    """Rasa refused the request (4xx) or answered something that isn't a REST reply."""


class RasaClient:
    def __init__(
        self,
        base_url: str,
        token: Optional[str] = None,
        timeout_s: float = 25.0,
        connect_timeout_s: float = 3.0,
        session: Optional[aiohttp.ClientSession] = None,
    ) -> None:
        # total timeout stays under LINE's 60 s reply-token life, leaving time to reply
        self._base = base_url.rstrip("/")
        self._token = token or None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=connect_timeout_s)
        self._session = session
        self._own_session = session is None

    @classmethod
    def from_env(cls, **kwargs: Any) -> "RasaClient":
        """RASA_URL (default http://127.0.0.1:5005) and RASA_TOKEN."""
        return cls(
            os.environ.get("RASA_URL") or "http://127.0.0.1:5005", os.environ.get("RASA_TOKEN") or None, **kwargs
        )

    def _params(self) -> Dict[str, str]:
        return {"token": self._token} if self._token else {}

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._own_session = True
        return self._session

    async def send(self, sender: str, message: str, metadata: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
        """Send one user message; returns Rasa's bot messages (possibly empty)."""
        payload: Dict[str, Any] = {"sender": sender, "message": message}
        if metadata:
            payload["metadata"] = metadata
        body = await self._post(REST_PATH, payload, "the message")
        if not isinstance(body, list) or not all(isinstance(m, dict) for m in body):
            raise RasaRejected("Rasa's answer is not a list of messages")
        return body

    async def append_events(self, sender: str, events: List[Dict[str, Any]]) -> None:
        """Appends events to the conversation's tracker (relayed turns, resume, slots)
        without running the bot."""
        await self._post(f"/conversations/{quote(sender, safe='')}/tracker/events", events, "the events")

    async def trigger_intent(
        self, sender: str, intent: str, entities: Optional[Dict[str, Any]] = None
    ) -> List[Dict[str, Any]]:
        """Runs the bot on an intent the customer did not type (an agent's resolve or
        approval); returns the bot's messages."""
        body = await self._post(
            f"/conversations/{quote(sender, safe='')}/trigger_intent",
            {"name": intent, "entities": entities or {}},
            "the intent",
        )
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list):
            raise RasaRejected("Rasa's trigger_intent answer has no messages")
        return [m for m in messages if isinstance(m, dict)]

    async def conversation(self, sender: str) -> Dict[str, Any]:
        """The conversation's tracker (slots, active_loop, paused, events) as Rasa has it."""
        tracker = await self._get(f"/conversations/{quote(sender, safe='')}/tracker", "the tracker")
        return tracker if isinstance(tracker, dict) else {}

    async def recorded_turn(self, sender: str, key: str, value: str) -> Optional[List[Dict[str, Any]]]:
        """The bot's messages of the turn whose user message carried metadata `key` ==
        `value`, rebuilt from the tracker as the REST channel returned them; None when
        Rasa has no such user message.

        Why: a message must reach Rasa once. When the gateway cannot know whether an
        earlier attempt got through (it crashed, or Rasa timed out after taking the
        message), the tracker says; a turn found there is answered, not sent again."""
        try:
            async with self._get_session().get(
                f"{self._base}/conversations/{quote(sender, safe='')}/tracker",
                params=self._params(),
                timeout=self._timeout,
            ) as resp:
                if resp.status >= 500:
                    raise RasaUnavailable(f"Rasa answered HTTP {resp.status}")
                if resp.status >= 400:
                    raise RasaRejected(f"Rasa refused the tracker: HTTP {resp.status}")
                tracker = await resp.json(content_type=None)
        except RasaError:
            raise
        except asyncio.TimeoutError:
            raise RasaUnavailable("Rasa did not answer in time") from None
        except (aiohttp.ClientError, ValueError) as exc:
            raise RasaUnavailable(f"Rasa unreachable ({type(exc).__name__})") from None
        events = tracker.get("events") if isinstance(tracker, dict) else None
        if not isinstance(events, list):
            return None
        found: Optional[List[Dict[str, Any]]] = None
        for e in events:
            if not isinstance(e, dict):
                continue
            if e.get("event") == "user":
                if found is not None:
                    break  # the next customer turn: the answer ends here
                if (e.get("metadata") or {}).get(key) == value:
                    found = []
            elif found is not None and e.get("event") == "bot":
                found.append(_rest_message(sender, e))
        return found

    async def _get(self, path: str, what: str) -> Any:
        return await self._request("GET", path, what)

    async def _post(self, path: str, payload: Any, what: str) -> Any:
        return await self._request("POST", path, what, payload)

    async def _request(self, method: str, path: str, what: str, payload: Any = None) -> Any:
        """One call to Rasa's HTTP API; its failures as RasaUnavailable (retry) or
        RasaRejected (do not)."""
        kwargs: Dict[str, Any] = {"params": self._params(), "timeout": self._timeout}
        if method == "POST":
            kwargs["json"] = payload
        try:
            async with self._get_session().request(method, self._base + path, **kwargs) as resp:
                status = resp.status
                if status >= 500:
                    raise RasaUnavailable(f"Rasa answered HTTP {status}")
                if status >= 400:
                    raise RasaRejected(f"Rasa refused {what}: HTTP {status}")
                try:
                    return await resp.json(content_type=None)
                except ValueError:
                    raise RasaRejected("Rasa's answer is not JSON") from None
        except RasaError:
            raise
        except asyncio.TimeoutError:
            raise RasaUnavailable("Rasa did not answer in time") from None
        except aiohttp.ClientError as exc:
            # the class name says enough (refused, reset, ...); str(exc) may hold the URL
            raise RasaUnavailable(f"Rasa unreachable ({type(exc).__name__})") from None

    async def healthy(self) -> bool:
        """True when Rasa's HTTP server answers its root endpoint."""
        try:
            async with self._get_session().get(self._base + "/", timeout=self._timeout) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
            self._session = None


def _rest_message(sender: str, bot_event: Dict[str, Any]) -> Dict[str, Any]:
    """A tracker `bot` event as the REST channel's message dict (text, buttons, custom...)."""
    message: Dict[str, Any] = {"recipient_id": sender}
    if bot_event.get("text") is not None:
        message["text"] = bot_event["text"]
    for k, v in (bot_event.get("data") or {}).items():
        if v is not None:
            message[k] = v
    return message


__all__ = ["RasaClient", "RasaError", "RasaRejected", "RasaUnavailable"]
