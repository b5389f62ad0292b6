"""The Slack app (slack-bolt, async): POST /slack/events takes the Events API and
interactivity (buttons) for handoff cases.

Bolt verifies every request with the signing secret first (missing, wrong, or older than
five minutes: 401 and nothing else happens). Then:
- an event Slack retries (X-Slack-Retry-Num, same event_id) is acknowledged and dropped;
- a human message in a case thread of the handoff channel is an agent's reply;
- the card's controls (Claim, Apply / Approve a remedy or a combination, Resolve, Goodwill,
  Approve goodwill, Escalate, Reassign (users_select), Suggest a reply (static_select))
  are acknowledged at once, then acted on, only for members of the handoff channel
  (others get a private note and nothing changes); Goodwill and Suggest a reply open a
  modal with the click's trigger_id;
- the modals' view_submissions (callback_id case_goodwill, case_reply_draft) are checked
  first (a member? valid?) and answered with `response_action: "errors"` when not, which
  keeps the modal open; otherwise acked, then acted on;
- every other verified request (app_mention, reaction_added, tokens_revoked, another
  modal's view_submission, a shortcut, another app's button, app_rate_limited, ...) gets
  200 and a debug log: Slack counts any other status as a failed delivery and retries it.
Fields are checked where they are used (each listener checks its own): genuine payloads
carry objects where a string might be expected (channel_created's `event.channel`,
`event.user` of user_change, a legacy interactive_message without `action_id`).
Each listener is small; the case rules live in gateway/core/handoff.py (and the modules
beside it, mapped in its docstring).
"""

from __future__ import annotations

import html
import logging
import re
from typing import Any, Callable, Dict, Optional

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier

from contracts.case_context import CaseContext
from gateway.core.cases import RESOLVED, Case, CaseConflict
from gateway.core.handoff import AgentDeskError, HandoffService
from gateway.core.rasa_client import RasaError
from gateway.slack.cards import (
    APPROVE_PREFIX,
    CLAIM,
    ESCALATE,
    GOODWILL_APPROVE,
    GOODWILL_OPEN,
    REASSIGN,
    RESOLVE,
    SUGGEST,
    TOOLS_BLOCK,
)
from gateway.slack.desk import SlackDesk
from gateway.slack.modals import (
    DRAFT_VIEW,
    GOODWILL_VIEW,
    KIND_BLOCK,
    REPLY_BLOCK,
    draft_modal,
    goodwill_modal,
    not_member_errors,
    read_draft,
    read_goodwill,
)

log = logging.getLogger(__name__)
# human messages in a thread: plain ones and those that also share a file or go to the channel
AGENT_SUBTYPES = (None, "thread_broadcast", "file_share")


def slack_to_plain(text: str) -> str:
    """Slack mrkdwn as the customer should read it: entities decoded, links unwrapped."""
    text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"\2 (\1)", text)
    text = re.sub(r"<(https?://[^>]+)>", r"\1", text)
    return html.unescape(text)


def build_slack_app(
    *, signing_secret: str, desk: SlackDesk, service: HandoffService, first_time: Callable[[str], Any]
) -> AsyncApp:
    # unhandled requests raise into on_error below, which acks them (bolt's default is 404)
    app = AsyncApp(client=desk.client, signing_secret=signing_secret, raise_error_for_unhandled_request=True)

    @app.error
    async def on_error(error: Exception, body: Dict[str, Any]) -> Optional[BoltResponse]:
        if isinstance(error, BoltUnhandledRequestError):
            log.debug("Slack %s request acknowledged; nothing here handles it", _kind(body))
            return BoltResponse(status=200, body="")
        # bolt's default logged str(error), which may quote a payload; the type says enough
        log.error("Slack listener failed (%s)", type(error).__name__)
        log.debug("Slack listener failure", exc_info=error)
        return None

    @app.middleware
    async def drop_retries(body: Dict[str, Any], next: Callable[[], Any]) -> Optional[BoltResponse]:
        """Slack resends an event it thinks was not acknowledged; do it once only."""
        event_id = body.get("event_id") if isinstance(body, dict) else None
        if event_id and not await first_time(f"slack-event:{event_id}"):
            log.info("Slack event retry dropped (already handled)")
            return BoltResponse(status=200, body="")
        return await next()

    @app.event("message")
    async def on_message(event: Dict[str, Any]) -> None:
        if event.get("channel") != desk.channel or event.get("bot_id"):
            return
        if event.get("subtype") not in AGENT_SUBTYPES:
            return
        thread_ts, ts, user = event.get("thread_ts"), event.get("ts"), event.get("user")
        text = event.get("text") or ""
        if not all(isinstance(v, str) for v in (thread_ts, ts, user, text)):
            return  # not a person's thread reply as Slack sends one
        if not thread_ts or thread_ts == ts or not user:
            return
        if not await desk.is_member(user):
            log.info("a thread reply from outside the handoff channel was ignored")
            return
        name = await desk.agent_name(user)
        outcome = await service.agent_reply(desk.channel, thread_ts, ts, user, name, slack_to_plain(text))
        log.info("agent reply in a case thread: %s", outcome)

    async def tell(respond: Callable[..., Any], text: str) -> None:
        """A note only the presser sees (the interaction's response_url, which works for
        people outside the channel too)."""
        try:
            await respond(text=text, response_type="ephemeral", replace_original=False)
        except Exception as exc:
            log.warning("could not answer a button press privately (%s)", type(exc).__name__)

    async def allowed(body: Dict[str, Any], respond: Callable[..., Any]) -> Optional[str]:
        user = body.get("user")
        user_id = user.get("id") if isinstance(user, dict) else None
        if isinstance(user_id, str) and await desk.is_member(user_id):
            return user_id
        log.warning("a case button was pressed by someone outside the handoff channel; refused")
        await tell(
            respond,
            "Only members of the handoff channel can act on cases. / 対応チャンネルのメンバーのみ操作できます。",
        )
        return None

    async def act(user: str, respond: Callable[..., Any], what: str, coro_factory: Callable[[str], Any]) -> None:
        name = await desk.agent_name(user)
        try:
            await coro_factory(name)
        except CaseConflict as exc:
            await tell(respond, f"Not done: {exc}")
        except KeyError:
            await tell(respond, "This case no longer exists.")
        except RasaError as exc:
            log.error("%s failed: Rasa %s", what, exc)
            await tell(respond, f"Not done: the bot did not answer ({exc}). Please try again.")

    def case_button(action_id: str, what: str, run: Callable[[str, str, str], Any]) -> None:
        """A button whose value is the case id: acknowledged, then `run(case_id, user, name)`
        for a member of the handoff channel (claim, resolve, escalate, approve a goodwill)."""

        @app.action({"type": "block_actions", "action_id": action_id})
        async def on_press(
            ack: Callable[[], Any], body: Dict[str, Any], action: Dict[str, Any], respond: Callable[..., Any]
        ) -> None:
            await ack()
            user = await allowed(body, respond)
            case_id = _value(action)
            if user and case_id:
                await act(user, respond, what, lambda name: run(case_id, user, name))

    # Our buttons are Block Kit ones: block_actions only (a legacy interactive_message or
    # a dialog never reaches these listeners).
    case_button(CLAIM, "claim", service.claim)
    case_button(RESOLVE, "resolve", service.resolve)
    case_button(GOODWILL_APPROVE, "goodwill approval", service.approve_goodwill)
    case_button(ESCALATE, "escalate", service.escalate)

    @app.action({"type": "block_actions", "action_id": re.compile(f"^{APPROVE_PREFIX}")})
    async def on_approve(
        ack: Callable[[], Any], body: Dict[str, Any], action: Dict[str, Any], respond: Callable[..., Any]
    ) -> None:
        await ack()
        user = await allowed(body, respond)
        case_id, _, remedy = _value(action).partition("|")
        if user and case_id and remedy:
            await act(user, respond, "approve", lambda name: service.approve(case_id, remedy, user, name))

    # --- the card's tools: goodwill, escalate, reassign, suggested replies -------------------
    async def open_modal(body: Dict[str, Any], respond: Callable[..., Any], view: Dict[str, Any]) -> None:
        """views.open with the click's trigger_id (Slack takes it once, within 3 s)."""
        trigger_id = body.get("trigger_id")
        if not isinstance(trigger_id, str) or not trigger_id:
            return
        try:
            await desk.open_view(trigger_id, view)
        except AgentDeskError as exc:
            log.warning("a modal did not open (%s)", exc)
            await tell(respond, "The form did not open; please press again. / もう一度押してください。")

    async def open_case(case_id: str, respond: Callable[..., Any]) -> Optional[Case]:
        case = await service.cases.get(case_id)
        if case is None or case.status == RESOLVED:
            await tell(respond, "This case is resolved or no longer exists. / この案件は解決済みです。")
            return None
        return case

    @app.action({"type": "block_actions", "action_id": GOODWILL_OPEN})
    async def on_goodwill(
        ack: Callable[[], Any], body: Dict[str, Any], action: Dict[str, Any], respond: Callable[..., Any]
    ) -> None:
        await ack()
        user = await allowed(body, respond)
        case = await open_case(_value(action), respond) if user and _value(action) else None
        if case is not None:
            await open_modal(body, respond, goodwill_modal(case))

    @app.action({"type": "block_actions", "action_id": REASSIGN})
    async def on_reassign(
        ack: Callable[[], Any], body: Dict[str, Any], action: Dict[str, Any], respond: Callable[..., Any]
    ) -> None:
        await ack()
        user = await allowed(body, respond)
        case_id, target = _tools_case(action), action.get("selected_user")
        if not (user and case_id and isinstance(target, str) and target):
            return
        if not await desk.is_member(target):
            await tell(
                respond,
                f"<@{target}> is not a member of the handoff channel; the case stays as it is. / "
                "対応チャンネルのメンバーにのみ担当変更できます。",
            )
            return
        to_name = await desk.agent_name(target)
        await act(user, respond, "reassign", lambda name: service.reassign(case_id, target, to_name, user, name))

    @app.action({"type": "block_actions", "action_id": SUGGEST})
    async def on_suggest(
        ack: Callable[[], Any], body: Dict[str, Any], action: Dict[str, Any], respond: Callable[..., Any]
    ) -> None:
        await ack()
        user = await allowed(body, respond)
        selected = action.get("selected_option")
        value = selected.get("value") if isinstance(selected, dict) else None
        case_id, _, key = value.partition("|") if isinstance(value, str) else ("", "", "")
        case = await open_case(case_id, respond) if user and case_id and key else None
        if user is None or case is None:
            return
        found = service.suggested_reply(case, key, await desk.agent_name(user))
        if found is None:
            await tell(respond, "That suggested reply is no longer in the reply book.")
            return
        await open_modal(body, respond, draft_modal(case, key, *found))

    # --- the modals' submissions: answered at once (errors keep the modal open) -------------
    async def modal_member(body: Dict[str, Any], view: Dict[str, Any], ack: Callable[..., Any]) -> Optional[str]:
        user = body.get("user")
        user_id = user.get("id") if isinstance(user, dict) else None
        if isinstance(user_id, str) and await desk.is_member(user_id):
            return user_id
        log.warning("a case form was submitted by someone outside the handoff channel; refused")
        await ack(response_action="errors", errors=not_member_errors(view))
        return None

    def in_thread(case_id: str, user: str) -> Callable[..., Any]:
        """A `respond` for a modal (which has none): a note in the case's thread only
        `user` sees."""

        async def note(text: str, **_: Any) -> None:
            case = await service.cases.get(case_id)
            if case is not None:
                await desk.warn_agent(case, user, text)

        return note

    @app.view({"type": "view_submission", "callback_id": GOODWILL_VIEW})
    async def on_goodwill_submit(ack: Callable[..., Any], body: Dict[str, Any], view: Dict[str, Any]) -> None:
        user = await modal_member(body, view, ack)
        case = await service.cases.get(str(view.get("private_metadata") or "")) if user else None
        if user is None:
            return
        if case is None or case.status == RESOLVED:
            await ack(response_action="errors", errors={KIND_BLOCK: "This case is resolved. / 解決済みの案件です。"})
            return
        goodwill, errors = read_goodwill(view, CaseContext.from_dict(case.context))
        if errors or goodwill is None:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        if not await first_time(f"slack-view:{view.get('id')}"):
            return  # the same submission again (a double click, Slack's retry)
        note = in_thread(case.case_id, user)
        await act(user, note, "goodwill", lambda name: service.goodwill(case.case_id, goodwill, user, name))

    @app.view({"type": "view_submission", "callback_id": DRAFT_VIEW})
    async def on_draft_submit(ack: Callable[..., Any], body: Dict[str, Any], view: Dict[str, Any]) -> None:
        user = await modal_member(body, view, ack)
        if user is None:
            return
        text, errors = read_draft(view)
        view_id, case_id = view.get("id"), str(view.get("private_metadata") or "")
        if errors or text is None or not isinstance(view_id, str) or not view_id:
            await ack(response_action="errors", errors=errors or {REPLY_BLOCK: "Please try again."})
            return
        await ack()
        note = in_thread(case_id, user)
        await act(user, note, "suggested reply", lambda name: service.send_draft(case_id, view_id, user, name, text))

    return app


def _tools_case(action: Dict[str, Any]) -> str:
    """The case of an element in the card's tools row (block_id "case_tools|K7")."""
    block_id = action.get("block_id")
    prefix, _, case_id = block_id.partition("|") if isinstance(block_id, str) else ("", "", "")
    return case_id if prefix == TOOLS_BLOCK else ""


def _value(action: Dict[str, Any]) -> str:
    """A case button's value (the case id, or "case|remedy"); "" when it is not a string."""
    value = action.get("value")
    return value if isinstance(value, str) else ""


def _kind(body: Any) -> str:
    """What kind of Slack request this is, for a log line ("event_callback/app_mention")."""
    if not isinstance(body, dict):
        return "unknown"
    kind, event = body.get("type"), body.get("event")
    sub = event.get("type") if isinstance(event, dict) else None
    return "/".join(str(k)[:40] for k in (kind, sub) if isinstance(k, str))


def payload_problem(body: Any) -> Optional[str]:
    """Why bolt could not route a (signed) body, or None.

    Only what bolt reads before any listener runs is checked (where a shape Slack never
    sends made bolt fail with a 500); the fields a listener uses are checked there."""
    if not isinstance(body, dict):
        return "not an object"
    if "event" in body and not isinstance(body["event"], dict):
        return "event is not an object"  # bolt's self-event check reads event.bot_id
    if body.get("type") in ("view_submission", "view_closed") and "view" in body:
        # bolt matches a view listener on view.callback_id and reads view.type first
        view = body["view"]
        if not isinstance(view, dict):
            return "view is not an object"
        if "callback_id" in view and not (isinstance(view["callback_id"], str) and "type" in view):
            return "view has no type or a callback_id that is not a string"
    if body.get("type") == "block_actions" and "actions" in body:
        actions = body["actions"]
        # bolt takes actions[0] as the action and matches its action_id to our patterns
        if not (isinstance(actions, list) and actions and isinstance(actions[0], dict)):
            return "actions are not a list of actions"
        if not isinstance(actions[0].get("action_id"), (str, type(None))):
            return "action_id is not a string"
    return None


def signed_by_slack(body: bytes, headers: Any, signing_secret: str) -> bool:
    """Slack's v0 signature of the raw body, at most five minutes old; garbled headers
    (non-numeric or non-ASCII) are simply invalid."""
    if not signing_secret:
        return False
    try:
        return SignatureVerifier(signing_secret).is_valid(
            body, headers.get("X-Slack-Request-Timestamp"), headers.get("X-Slack-Signature")
        )
    except (ValueError, TypeError, OverflowError):
        return False


def _ignored(verified: bool) -> web.Response:
    """Ack a verified request we cannot use; without our own check bolt never verified it."""
    if verified:
        return web.Response(status=200, text="")
    return web.json_response({"error": "not a Slack payload"}, status=400)


async def handle(app: AsyncApp, request: web.Request, signing_secret: Optional[str] = None) -> web.Response:
    """aiohttp -> bolt -> aiohttp.

    With `signing_secret` the signature is checked on the raw bytes before anything is
    parsed: bolt parses the body before its own check, and a body that is not a Slack
    payload (not UTF-8, not JSON, JSON that is not an object) made it fail with a 500,
    signed or not. An unsigned one gets 401 and nothing runs. A signed one that bolt
    cannot read or route is acknowledged (200) and ignored with a warning: only Slack
    (or whoever holds the secret) signs, and any non-2xx makes Slack send it again."""
    raw = await request.read()
    if signing_secret is not None and not signed_by_slack(raw, request.headers, signing_secret):
        log.warning("Slack request refused: missing, invalid or stale signature (%d bytes)", len(raw))
        return web.json_response({"error": "invalid request"}, status=401)
    try:
        bolt_request = await to_bolt_request(request)
    except Exception as exc:  # noqa: BLE001 - parsing and bolt's context building only
        log.warning(
            "Slack request ignored: the body is not a Slack payload (%s, %d bytes)", type(exc).__name__, len(raw)
        )
        return _ignored(signing_secret is not None)
    problem = payload_problem(bolt_request.body)
    if problem is not None:
        log.warning("Slack request ignored: %s", problem)
        return _ignored(signing_secret is not None)
    return await to_aiohttp_response(await app.async_dispatch(bolt_request))


__all__ = ["build_slack_app", "handle", "payload_problem", "signed_by_slack", "slack_to_plain"]
