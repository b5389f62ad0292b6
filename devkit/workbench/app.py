"""The workbench's aiohttp app: routes, settings, and the three pages.

    GET  /                       the customer's LINE phone beside the agents' Slack channel
    GET  /api/live?user=U..      JSON for the page's poll: the phone's timeline, the channel
    POST /api/line/send|tap      the customer types / taps (signed webhook to the gateway)
    GET  /api/line/rich_menu/{id}.png   a rich menu's image, from the LINE emulator
    POST /api/slack/press|reply  the agent clicks a card's button / replies in its thread
    POST /api/slack/act          the agent uses any element of the card (button, users_select,
                                 static_select), with its block_id
    POST /api/slack/view_submit|view_close   a modal the agent's click opened
    GET  /review                 review queue, labelling, the last evaluation
    POST /review/refresh|label   run scripts/review.py / scripts/import_review.py
    GET  /review/matrix/{ja,en}.png
    GET  /cases?from=&to=&preset=   plots of how cases went
    GET  /quality?from=&to=&preset= "CS damage": audit findings by pattern, the worst cases
                                 with the turns that show them, recurring-problem alerts,
                                 follow-up outcomes (devkit/workbench/quality.py)
    GET  /static/...             CSS and JS (served from this package; no CDN)

Local use only: it binds to 127.0.0.1 by default and refuses cross-site POSTs, because
its buttons run scripts and speak for customers and agents.

The cases and quality pages read the product over HTTP, never by import (issue 14): the
action server's ops API (bot/server/ops.py) and the gateway's (GET /ops/cases), with
OPS_API_TOKEN from the environment (devkit/workbench/ops_client.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Set
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web

from contracts.vocabulary import Label, problem_label, reason_label, remedy_label
from devkit.emulators.slack_api import DEFAULT_BOT_USER_ID, DEFAULT_USERS
from devkit.workbench import charts
from devkit.workbench.cases import COUPON_KINDS, TOKYO, histogram, median, merge_live, period, summarize
from devkit.workbench.live import AGENTS, DEFAULT_AGENT, DEFAULT_CUSTOMER, DEMO_CUSTOMERS, AgentSlack, CustomerPhone
from devkit.workbench.ops_client import OpsClient, OpsUnavailable
from devkit.workbench.pages import LANG_COOKIE, esc, json_script, layout, pick_lang, t, texts_for
from devkit.workbench.review import RunResult, domain_intents, markdown_to_html, read_queue, run_script, write_one_row

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
STATIC = Path(__file__).resolve().parent / "static"
LINE_USER_ID = re.compile(r"^U[0-9a-f]{32}$")
RICH_MENU_ID = re.compile(r"^richmenu-[0-9A-Za-z_-]{1,64}$")
PEOPLE = (DEFAULT_BOT_USER_ID, *DEFAULT_USERS)  # who a Slack <@mention> can name
MAX_TEXT = 5000  # what LINE takes in one text message; Slack takes more, but be plain


def action_server_base(url: str) -> str:
    """ACTION_SERVER_URL is Rasa's action endpoint (.../webhook); the ops API is beside it."""
    url = url.rstrip("/")
    return url[: -len("/webhook")] if url.endswith("/webhook") else url


@dataclass
class Settings:
    gateway_url: str = "http://127.0.0.1:8080"
    line_emulator_url: str = "http://127.0.0.1:8091"
    slack_emulator_url: str = "http://127.0.0.1:8092"
    line_channel_secret: str = "local-demo-secret"
    slack_signing_secret: str = "local-demo-slack-secret"
    slack_channel: str = "C0HANDOFF1"
    slack_supervisor_channel: str = ""  # where escalations go; empty: broadcast in the thread
    # the ops APIs (cases, quality): the action server's and the gateway's (gateway_url)
    action_server_url: str = "http://127.0.0.1:5055"
    ops_api_token: str = ""
    root: Path = ROOT  # where the scripts run (the repository)
    review_csv: Path = ROOT / "results" / "review" / "review.csv"
    evaluate_dir: Path = ROOT / "results" / "evaluate" / "latest"
    domain: Path = ROOT / "domain.yml"
    bot_python: Path = ROOT / ".venv-bot" / "bin" / "python"
    review_script: Path = ROOT / "scripts" / "review.py"
    import_script: Path = ROOT / "scripts" / "import_review.py"
    import_args: List[str] = field(default_factory=list)  # extra, e.g. --nlu-dir for tests
    poll_ms: int = 700

    @classmethod
    def from_env(cls, **overrides: Any) -> "Settings":
        env = os.environ
        s = cls(
            line_channel_secret=env.get("LINE_CHANNEL_SECRET") or cls.line_channel_secret,
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET") or cls.slack_signing_secret,
            slack_channel=env.get("SLACK_HANDOFF_CHANNEL") or cls.slack_channel,
            slack_supervisor_channel=env.get("SLACK_SUPERVISOR_CHANNEL") or "",
            action_server_url=action_server_base(env.get("ACTION_SERVER_URL") or cls.action_server_url),
            ops_api_token=env.get("OPS_API_TOKEN", ""),
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(s, key, value)
        return s


@dataclass
class State:
    """What the app keeps between requests (one local user; nothing survives a restart)."""

    settings: Settings
    session: Optional[aiohttp.ClientSession] = None
    phone: Optional[CustomerPhone] = None
    slack: Optional[AgentSlack] = None
    ops: Optional[OpsClient] = None
    results: Dict[int, RunResult] = field(default_factory=dict)  # shown after a redirect
    added_rows: Set[str] = field(default_factory=set)  # review rows labelled here
    busy: asyncio.Lock = field(default_factory=asyncio.Lock)  # one script at a time


STATE = web.AppKey("workbench_state", State)


# --- plumbing ------------------------------------------------------------------------------


@web.middleware
async def same_origin_posts(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Another site's page must not be able to press our buttons (scripts, messages)."""
    if request.method == "POST":
        origin = request.headers.get("Origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.host:
            raise web.HTTPForbidden(text="cross-site request refused")
    return await handler(request)


def lang_of(request: web.Request) -> str:
    return pick_lang(request.query.get("lang"), request.cookies.get(LANG_COOKIE))


def html_response(request: web.Request, text: str) -> web.Response:
    resp = web.Response(text=text, content_type="text/html", charset="utf-8")
    if request.query.get("lang") in ("ja", "en"):
        resp.set_cookie(LANG_COOKIE, request.query["lang"], max_age=365 * 24 * 3600, samesite="Lax")
    return resp


def _in(label: Label, lang: str) -> str:
    """A contract label on the page's side; English starts with a capital on its own."""
    if lang == "ja":
        return label.ja
    return label.en[:1].upper() + label.en[1:]


def _paren(text: str, note: str, lang: str) -> str:
    return f"{text}（{note}）" if lang == "ja" else f"{text} ({note})"


def problem_name(problem: str, lang: str) -> str:
    return t(lang, "problem_none") if problem == "none" else _in(problem_label(problem), lang)


def reason_name(reason: str, lang: str) -> str:
    return _in(reason_label(reason), lang)


def remedy_name(kind: str, lang: str) -> str:
    return _in(remedy_label(kind), lang)


# --- the live page ----------------------------------------------------------------------------

LIVE_BODY = """
<div class="live" id="live" data-user="{user}" data-agent="{agent}" data-poll-ms="{poll_ms}">
  <p id="live-status" class="live-status" role="status"></p>
  <section class="phone-pane" aria-labelledby="phone-title">
    <h1 id="phone-title" class="pane-title">{phone_title}</h1>
    <div class="phone">
      <div class="phone-head">
        <label for="customer-select">{customer_label}</label>
        <select id="customer-select">{customer_options}</select>
      </div>
      <div class="chat-log" id="chat-log" role="log" aria-live="polite" aria-label="LINE" tabindex="0"></div>
      <div class="chips" id="chips" role="group" aria-label="quick replies"></div>
      <form class="chat-form" id="chat-form">
        <label class="sr-only" for="chat-text">{type_message}</label>
        <input id="chat-text" name="text" autocomplete="off" maxlength="{max_text}" placeholder="{type_message}">
        <button type="submit">{send}</button>
      </form>
      <div class="rich-menu" id="rich-menu" hidden></div>
    </div>
    <p class="hint">{customer_hint}</p>
  </section>
  <section class="slack-pane" aria-labelledby="slack-title">
    <h1 id="slack-title" class="pane-title">{slack_title}</h1>
    <div class="slack">
      <div class="slack-sidebar">
        <div class="workspace">Emulated Workspace</div>
        <div class="channel-name" aria-current="true"># order-support-handoff</div>
        <label for="agent-select">{agent_label}</label>
        <select id="agent-select">{agent_options}</select>
      </div>
      <div class="slack-channel">
        <h2 class="slack-head"># order-support-handoff</h2>
        <div id="channel" class="messages" role="log" aria-live="polite" tabindex="0">
          <p class="empty">{channel_empty}</p>
        </div>
      </div>
      <aside class="slack-thread" aria-labelledby="thread-title">
        <h2 class="slack-head" id="thread-title">{thread_title}</h2>
        <div id="thread" class="messages" role="log" aria-live="polite" tabindex="0">
          <p class="empty">{thread_none}</p>
        </div>
        <form id="reply-form" class="reply-form" hidden>
          <label class="sr-only" for="reply-text">{reply_label}</label>
          <textarea id="reply-text" rows="3" maxlength="{max_text}" placeholder="{reply_label}"></textarea>
          <button type="submit">{reply_send}</button>
          <p class="hint">{reply_hint}</p>
        </form>
      </aside>
    </div>
  </section>
</div>
"""


def _options(choices: Dict[str, str], selected: str) -> str:
    return "".join(
        f'<option value="{esc(k)}"{" selected" if k == selected else ""}>{esc(v)}</option>' for k, v in choices.items()
    )


async def live_page(request: web.Request) -> web.Response:
    lang = lang_of(request)
    state = request.app[STATE]
    user = request.query.get("user", DEFAULT_CUSTOMER)
    if not LINE_USER_ID.match(user):
        user = DEFAULT_CUSTOMER
    customers = {u: f"{c['name']} ({c['language']})" for u, c in DEMO_CUSTOMERS.items()}
    if user not in customers:
        customers[user] = user
    body = LIVE_BODY.format(
        user=esc(user),
        agent=esc(DEFAULT_AGENT),
        poll_ms=state.settings.poll_ms,
        phone_title=esc(t(lang, "phone")),
        customer_label=esc(t(lang, "customer")),
        customer_options=_options(customers, user),
        type_message=esc(t(lang, "type_message")),
        send=esc(t(lang, "send")),
        customer_hint=esc(t(lang, "you_are_customer")),
        slack_title=esc(t(lang, "slack")),
        agent_label=esc(t(lang, "agent")),
        agent_options=_options(AGENTS, DEFAULT_AGENT),
        channel_empty=esc(t(lang, "channel_empty")),
        thread_title=esc(t(lang, "thread")),
        thread_none=esc(t(lang, "thread_none")),
        reply_label=esc(t(lang, "reply")),
        reply_send=esc(t(lang, "reply_send")),
        reply_hint=esc(t(lang, "reply_hint")),
        max_text=MAX_TEXT,
    )
    body += json_script("wb-texts", texts_for(lang))
    body += json_script("wb-people", {u: AgentSlack.name_of(u) for u in PEOPLE})
    body += json_script("wb-users", AgentSlack.workspace_users())  # what a users_select lists
    return html_response(
        request, layout(lang, "live", t(lang, "nav_live"), body, request.query, scripts=["/static/live.js"])
    )


async def live_state(request: web.Request) -> web.Response:
    state = request.app[STATE]
    user = request.query.get("user", DEFAULT_CUSTOMER)
    if not LINE_USER_ID.match(user):
        raise web.HTTPBadRequest(text="user must be a LINE user id")
    out: Dict[str, Any] = {"phone": None, "slack": None, "errors": []}
    try:
        out["phone"] = await state.phone.timeline(user)
        out["rich_menu"] = await state.phone.rich_menu(user)
    except (aiohttp.ClientError, asyncio.TimeoutError):
        out["errors"].append("line")
    try:
        out["slack"] = await state.slack.messages()
        out.update(await _agent_pane(state, request.query.get("agent", DEFAULT_AGENT)))
    except (aiohttp.ClientError, asyncio.TimeoutError):
        out["errors"].append("slack")
    return web.json_response(out)


async def _agent_pane(state: State, agent: str) -> Dict[str, Any]:
    """What only the acting agent sees: the modals their clicks opened, the private notes
    (ephemerals), and the supervisors' channel when escalations go there."""
    if agent not in AGENTS:
        agent = DEFAULT_AGENT
    return {
        "views": await state.slack.open_views(agent),
        "ephemerals": await state.slack.ephemerals(agent),
        "supervisor": await state.slack.supervisor_messages(),
    }


async def _json_body(request: web.Request) -> Dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="JSON body expected") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="JSON object expected")
    return body


def _text(body: Dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise web.HTTPBadRequest(text=f"{key}: 1-{MAX_TEXT} characters")
    return value


async def line_send(request: web.Request) -> web.Response:
    body = await _json_body(request)
    user, text = str(body.get("user", "")), _text(body, "text")
    if not LINE_USER_ID.match(user):
        raise web.HTTPBadRequest(text="user must be a LINE user id")
    try:
        status = await request.app[STATE].phone.send_text(user, text.strip())
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return web.json_response({"ok": False, "error": "unreachable"}, status=502)
    return web.json_response({"ok": status == 200, "gateway_status": status})


async def line_tap(request: web.Request) -> web.Response:
    body = await _json_body(request)
    user, data = str(body.get("user", "")), _text(body, "data")
    display = str(body.get("display") or "")[:300]
    if not LINE_USER_ID.match(user):
        raise web.HTTPBadRequest(text="user must be a LINE user id")
    try:
        status = await request.app[STATE].phone.tap(user, data, display)
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return web.json_response({"ok": False, "error": "unreachable"}, status=502)
    return web.json_response({"ok": status == 200, "gateway_status": status})


async def line_rich_menu_image(request: web.Request) -> web.Response:
    rich_menu_id = request.match_info["rich_menu_id"]
    if not RICH_MENU_ID.match(rich_menu_id):
        raise web.HTTPNotFound()
    try:
        data, content_type = await request.app[STATE].phone.rich_menu_image(rich_menu_id)
    except (aiohttp.ClientError, asyncio.TimeoutError):
        raise web.HTTPNotFound() from None
    # a rich menu's image never changes (LINE: a new image is a new menu)
    return web.Response(body=data, content_type=content_type, headers={"Cache-Control": "max-age=3600"})


def _agent(body: Dict[str, Any]) -> str:
    agent = str(body.get("agent") or DEFAULT_AGENT)
    if agent not in AGENTS:
        raise web.HTTPBadRequest(text="unknown agent")
    return agent


async def slack_press(request: web.Request) -> web.Response:
    body = await _json_body(request)
    ts, action_id = _text(body, "ts"), _text(body, "action_id")
    try:
        status, text = await request.app[STATE].slack.press(ts, action_id, _agent(body))
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return web.json_response({"ok": False, "error": "unreachable"}, status=502)
    return web.json_response({"ok": status == 200, "status": status, "detail": text[:300]})


async def slack_reply(request: web.Request) -> web.Response:
    body = await _json_body(request)
    ts, text = _text(body, "ts"), _text(body, "text")
    try:
        status, _ = await request.app[STATE].slack.reply(ts, text.strip(), _agent(body))
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return web.json_response({"ok": False, "error": "unreachable"}, status=502)
    except RuntimeError:  # the emulator refused the message (unknown thread)
        return web.json_response({"ok": False, "error": "refused"}, status=409)
    return web.json_response({"ok": status == 200, "status": status})


# --- the agent pane's other controls: any card element, modals ------------------------------


def _short(body: Dict[str, Any], key: str, limit: int = 255) -> Optional[str]:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise web.HTTPBadRequest(text=f"{key}: a string of at most {limit} characters")
    return value


async def slack_act(request: web.Request) -> web.Response:
    """{ts, block_id, action_id, value?, agent}: a button, users_select or static_select."""
    body = await _json_body(request)
    ts, action_id = _text(body, "ts"), _text(body, "action_id")
    block_id, value = _short(body, "block_id"), _short(body, "value", 2000)
    try:
        status, text = await request.app[STATE].slack.act(ts, block_id, action_id, _agent(body), value)
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return web.json_response({"ok": False, "error": "unreachable"}, status=502)
    return web.json_response({"ok": status == 200, "status": status, "detail": text[:300]})


async def slack_view_submit(request: web.Request) -> web.Response:
    """{view_id, values: {block_id: value}, agent} -> {ok, errors?: {block_id: message}}."""
    body = await _json_body(request)
    view_id, values = _text(body, "view_id"), body.get("values")
    if not isinstance(values, dict) or len(values) > 100:
        raise web.HTTPBadRequest(text="values: an object of at most 100 inputs")
    for key, value in values.items():
        if not (value is None or (isinstance(value, str) and len(value) <= MAX_TEXT)) or len(key) > 255:
            raise web.HTTPBadRequest(text="values: block_id -> a string or null")
    try:
        status, answer = await request.app[STATE].slack.submit_view(view_id, _agent(body), values)
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return web.json_response({"ok": False, "error": "unreachable"}, status=502)
    if status == 404:
        return web.json_response({"ok": False, "error": "no such open view", "closed": True}, status=404)
    if isinstance(answer, dict) and answer.get("response_action") == "errors":
        return web.json_response({"ok": True, "status": status, "errors": answer.get("errors") or {}})
    return web.json_response({"ok": status == 200, "status": status, "closed": status == 200})


async def slack_view_close(request: web.Request) -> web.Response:
    body = await _json_body(request)
    request.app[STATE].slack.close_view(_text(body, "view_id"))
    return web.json_response({"ok": True})


# --- the review page ----------------------------------------------------------------------------


def _result_box(lang: str, result: RunResult) -> str:
    cls = "ok" if result.ok else "error"
    return (
        f'<section id="result" class="result {cls}" role="status" tabindex="-1">'
        f"<h2>{esc(t(lang, 'output_of'))} <code>{esc(result.command)}</code> "
        f"({esc(t(lang, 'exit_code'))} {result.code})</h2>"
        f"<pre>{esc(result.output.strip() or '(no output)')}</pre></section>"
    )


def _queue_table(lang: str, rows: List[Dict[str, str]], intents: List[str], added: Set[str]) -> str:
    head = "".join(
        f'<th scope="col">{esc(t(lang, k))}</th>'
        for k in ("col_message", "col_lang", "col_predicted", "col_confidence", "col_reason", "col_time", "col_label")
    )
    body = []
    for row in rows:
        rid = row.get("id", "")
        chosen = row.get("correct_intent") or row.get("predicted_intent") or ""
        options = "".join(
            f'<option value="{esc(i)}"{" selected" if i == chosen else ""}>{esc(i)}</option>' for i in intents
        )
        if rid in added:
            control = f'<span class="added">✓ {esc(t(lang, "added"))}</span>'
        else:
            control = (
                f'<form method="post" action="/review/label" class="label-form">'
                f'<input type="hidden" name="row_id" value="{esc(rid)}">'
                f'<label class="sr-only" for="intent-{esc(rid)}">{esc(t(lang, "col_label"))}</label>'
                f'<select id="intent-{esc(rid)}" name="intent">{options}</select> '
                f'<button type="submit">{esc(t(lang, "add_training"))}</button></form>'
            )
        body.append(
            f'<tr data-row-id="{esc(rid)}"><td class="message">{esc(row.get("message"))}</td>'
            f"<td>{esc(row.get('language'))}</td><td><code>{esc(row.get('predicted_intent'))}</code></td>"
            f'<td class="num">{esc(_confidence(row.get("confidence")))}</td><td>{esc(row.get("reason"))}</td>'
            f'<td class="time">{esc(row.get("timestamp"))}</td><td>{control}</td></tr>'
        )
    return f'<table class="queue"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _confidence(value: Optional[str]) -> str:
    try:
        return f"{float(value or ''):.2f}"
    except ValueError:
        return value or ""


async def review_page(request: web.Request) -> web.Response:
    lang = lang_of(request)
    state = request.app[STATE]
    s = state.settings
    parts = [f"<h1>{esc(t(lang, 'review_title'))}</h1>"]
    try:
        result = state.results.get(int(request.query.get("result", "")))
    except ValueError:
        result = None
    if result is not None:
        parts.append(_result_box(lang, result))
    parts.append(
        f"<p>{esc(t(lang, 'review_intro'))}</p>"
        f'<form method="post" action="/review/refresh" class="inline">'
        f'<button type="submit">↻ {esc(t(lang, "refresh_queue"))}</button></form>'
    )
    rows = await asyncio.to_thread(read_queue, s.review_csv)
    if rows is None:
        parts.append(
            f'<p class="notice">{esc(t(lang, "queue_missing"))}: <code>{esc(_shown(s.review_csv, s.root))}</code></p>'
        )
    elif not rows:
        parts.append(f'<p class="notice">{esc(t(lang, "queue_empty"))}</p>')
    else:
        parts.append(_queue_table(lang, rows, domain_intents(s.domain), state.added_rows))
    parts.append(f'<h1 id="evaluation">{esc(t(lang, "eval_title"))}</h1>')
    summary = s.evaluate_dir / "summary.md"
    if summary.is_file():
        parts.append(f'<div class="markdown">{markdown_to_html(summary.read_text(encoding="utf-8"))}</div>')
    else:
        parts.append(
            f'<p class="notice">{esc(t(lang, "eval_missing"))}: <code>{esc(_shown(summary, s.root))}</code></p>'
        )
    figures = []
    for code in ("ja", "en"):
        image = s.evaluate_dir / code / "intent_confusion_matrix.png"
        caption = f"{esc(t(lang, 'matrix'))} ({code})"
        if image.is_file():
            figures.append(
                f'<figure class="matrix"><img src="/review/matrix/{code}.png?v={int(image.stat().st_mtime)}" '
                f'alt="{caption}" loading="lazy"><figcaption>{caption}</figcaption></figure>'
            )
        else:
            figures.append(
                f'<figure class="matrix"><p class="notice">{esc(t(lang, "matrix_missing"))}</p>'
                f"<figcaption>{caption}</figcaption></figure>"
            )
    parts.append(f'<div class="matrices">{"".join(figures)}</div>')
    return html_response(request, layout(lang, "review", t(lang, "nav_review"), "\n".join(parts), request.query))


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _remember(state: State, result: RunResult) -> int:
    key = max(state.results, default=0) + 1
    state.results[key] = result
    for old in sorted(state.results)[:-20]:  # keep the last few
        del state.results[old]
    return key


async def review_refresh(request: web.Request) -> web.Response:
    state = request.app[STATE]
    s = state.settings
    async with state.busy:
        result = await run_script(s.bot_python, s.review_script, ["--out", _shown(s.review_csv, s.root)], s.root)
    raise web.HTTPSeeOther(f"/review?result={_remember(state, result)}#result")


async def review_label(request: web.Request) -> web.Response:
    state = request.app[STATE]
    s = state.settings
    form = await request.post()
    row_id, intent = str(form.get("row_id", "")), str(form.get("intent", ""))
    if intent not in domain_intents(s.domain):
        raise web.HTTPBadRequest(text="unknown intent")
    rows = await asyncio.to_thread(read_queue, s.review_csv) or []
    row = next((r for r in rows if r.get("id") == row_id), None)
    if row is None:
        raise web.HTTPNotFound(text="no such row in the queue")
    path = write_one_row(row, intent)
    try:
        async with state.busy:
            result = await run_script(s.bot_python, s.import_script, ["--file", str(path), *s.import_args], s.root)
    finally:
        path.unlink(missing_ok=True)
    if result.ok:
        state.added_rows.add(row_id)
    raise web.HTTPSeeOther(f"/review?result={_remember(state, result)}#result")


async def review_matrix(request: web.Request) -> web.StreamResponse:
    code = request.match_info["lang"]
    if code not in ("ja", "en"):
        raise web.HTTPNotFound()
    image = request.app[STATE].settings.evaluate_dir / code / "intent_confusion_matrix.png"
    if not image.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(image, headers={"Content-Type": "image/png", "Cache-Control": "no-cache"})


# --- the cases page -------------------------------------------------------------------------------


async def _live_cases(state: State) -> tuple:
    """(cases, note key): the gateway's live case state (GET /ops/cases there), when it answers."""
    try:
        return await state.ops.live_cases(), "live_note"
    except OpsUnavailable as why:
        log.warning("workbench: the gateway's ops API: %s; cases from the database only", why.reason)
        return [], f"live_{why.reason}"


def ops_error(lang: str, why: OpsUnavailable) -> str:
    """Why a page has no data: the action server's ops API did not answer (no secret shown)."""
    return f'<p class="notice error" id="ops-error">{esc(t(lang, "db_error"))}: {esc(t(lang, "ops_" + why.reason))}</p>'


async def cases_page(request: web.Request) -> web.Response:
    lang = lang_of(request)
    state = request.app[STATE]
    q = request.query
    preset = q.get("preset")
    lo, hi, shown_from, shown_to = period(preset, q.get("from"), q.get("to"))
    if preset is None and not q.get("from") and not q.get("to"):
        preset = "30"  # what period() shows by default
    parts = [f"<h1>{esc(t(lang, 'cases_title'))}</h1>", _period_form(lang, preset, shown_from, shown_to)]
    try:
        stored = await state.ops.cases(lo, hi)
    except OpsUnavailable as why:  # show why instead of a 500 page
        log.warning("workbench: the action server's ops API: %s", why.reason)
        parts.append(ops_error(lang, why))
        return html_response(request, layout(lang, "cases", t(lang, "nav_cases"), "\n".join(parts), q))
    live, note = await _live_cases(state)
    rows = merge_live(stored, live, lo, hi)
    s = summarize(rows)
    total = len(rows)
    rate = f"{s.handed_off / total:.0%}" if total else "-"
    parts.append(
        f'<p class="totals"><span id="case-count"><strong>{total}</strong> {esc(t(lang, "n_cases"))}</span> · '
        f'<span id="handoff-count">{esc(t(lang, "handed_off"))} <strong>{s.handed_off}</strong> ({rate})</span> · '
        f'<span class="muted">{esc(t(lang, note))}. {esc(t(lang, "times_note"))}</span></p>'
    )
    empty = t(lang, "no_data")
    real, coupon = t(lang, "real_remedy"), t(lang, "coupon")
    remedy_items = sorted(s.remedies.items(), key=lambda kv: (kv[0] in COUPON_KINDS, -kv[1]))
    grid = [
        charts.bar_chart(
            t(lang, "by_problem"), [(problem_name(k, lang), v) for k, v in s.by_problem.most_common()], empty=empty
        ),
        charts.bar_chart(
            t(lang, "by_remedy"),
            [(_paren(remedy_name(k, lang), coupon if k in COUPON_KINDS else real, lang), v) for k, v in remedy_items],
            colors=[charts.PALETTE[2] if k in COUPON_KINDS else charts.PALETTE[0] for k, _ in remedy_items],
            empty=empty,
        ),
        charts.share_bar(
            t(lang, "handoff_rate"),
            [(t(lang, "handed_off"), s.handed_off), (t(lang, "bot_only"), total - s.handed_off)],
        ),
        charts.bar_chart(
            t(lang, "handoff_reasons"),
            [(reason_name(k, lang), v) for k, v in s.handoff_reasons.most_common()],
            empty=empty,
        ),
        _resolution_charts(lang, s.bot_minutes, s.agent_minutes),
        charts.bar_chart(
            t(lang, "satisfaction"),
            [(t(lang, k), s.satisfaction.get(k, 0)) for k in ("satisfied", "not_satisfied", "no_answer")],
            colors=[charts.PALETTE[0], charts.PALETTE[3], charts.PALETTE[6]],
            empty=empty,
        ),
    ]
    parts.append(f'<div class="chart-grid">{"".join(grid)}</div>')
    parts.append(_cases_table(lang, rows))
    return html_response(request, layout(lang, "cases", t(lang, "nav_cases"), "\n".join(parts), q))


def _resolution_charts(lang: str, bot: List[float], agent: List[float]) -> str:
    def note(values: List[float]) -> str:
        m = median(values)
        return f"{t(lang, 'median')} {m:.1f} {t(lang, 'minutes')} (n={len(values)})" if m is not None else "n=0"

    return (
        '<div class="chart-pair">'
        + charts.column_chart(f"{t(lang, 'resolution_time')}: {t(lang, 'by_bot')}", histogram(bot), note(bot))
        + charts.column_chart(f"{t(lang, 'resolution_time')}: {t(lang, 'by_agent')}", histogram(agent), note(agent))
        + "</div>"
    )


def _period_form(lang: str, preset: Optional[str], start: str, end: str, action: str = "/cases") -> str:
    """The period controls (presets, from/to dates) of the cases page, and of the quality page."""
    presets = []
    for value, key in (("7", "last_7"), ("30", "last_30"), ("all", "all_time")):
        current = ' aria-current="true"' if preset == value else ""
        presets.append(
            f'<a class="preset" href="{action}?{urlencode({"preset": value})}"{current}>{esc(t(lang, key))}</a>'
        )
    return (
        f'<form class="period" method="get" action="{action}" aria-label="{esc(t(lang, "period"))}">'
        f'<label>{esc(t(lang, "from"))} <input type="date" name="from" value="{esc(start)}"></label> '
        f'<label>{esc(t(lang, "to"))} <input type="date" name="to" value="{esc(end)}"></label> '
        f'<button type="submit">{esc(t(lang, "show"))}</button> '
        f'<span class="presets">{"".join(presets)}</span></form>'
    )


def _cases_table(lang: str, rows: List[Any]) -> str:
    if not rows:
        return f'<p class="notice">{esc(t(lang, "no_data"))}</p>'
    head = "".join(
        f'<th scope="col">{esc(t(lang, k))}</th>'
        for k in (
            "col_case",
            "col_opened",
            "col_problem",
            "col_status",
            "col_remedy",
            "col_handoff",
            "col_resolved",
            "col_minutes",
            "col_satisfaction",
        )
    )
    body = []
    for r in rows[:200]:
        minutes = r.minutes_to_resolution
        status_key = {
            "open": "status_open",
            "claimed": "status_claimed",
            "resolved": "status_resolved",
            "remedied": "status_remedied",
            "handed_off": "status_handed_off",
        }.get(r.status, "status_in_progress")
        if r.status == "open" and not r.handed_off:
            status_key = "status_in_progress"  # the bot's claim, not an agent's unclaimed case
        remedy = remedy_name(r.remedy, lang) + (f" ¥{r.remedy_amount:,}" if r.remedy_amount else "") if r.remedy else ""
        body.append(
            f'<tr data-case="{esc(r.case_number)}"><td><code>{esc(r.case_number)}</code></td>'
            f'<td class="time">{esc(r.opened_at.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M"))}</td>'
            f"<td>{esc(problem_name(r.problem, lang))}</td>"
            f'<td><span class="status status-{esc(r.status)}">{esc(t(lang, status_key))}</span></td>'
            f"<td>{esc(remedy)}</td><td>{esc(reason_name(r.handoff_reason, lang) if r.handoff_reason else '')}</td>"
            f"<td>{esc(r.resolved_by or '')}</td>"
            f'<td class="num">{esc(f"{minutes:.1f} " + t(lang, "minutes") if minutes is not None else "")}</td>'
            f"<td>{esc(t(lang, r.satisfaction) if r.satisfaction else '')}</td></tr>"
        )
    return (
        f'<h2>{esc(t(lang, "recent_cases"))}</h2><table class="cases"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


# --- the app ----------------------------------------------------------------------------------------


async def _startup(app: web.Application) -> None:
    state = app[STATE]
    s = state.settings
    state.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    state.phone = CustomerPhone(state.session, s.gateway_url, s.line_emulator_url, s.line_channel_secret)
    state.slack = AgentSlack(
        state.session,
        s.gateway_url,
        s.slack_emulator_url,
        s.slack_signing_secret,
        s.slack_channel,
        s.slack_supervisor_channel,
    )
    state.ops = OpsClient(state.session, s.action_server_url, s.gateway_url, s.ops_api_token)


async def _cleanup(app: web.Application) -> None:
    state = app[STATE]
    if state.session is not None:
        await state.session.close()


def make_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[same_origin_posts])
    app[STATE] = State(settings)
    app.router.add_get("/", live_page)
    app.router.add_get("/api/live", live_state)
    app.router.add_post("/api/line/send", line_send)
    app.router.add_post("/api/line/tap", line_tap)
    app.router.add_get("/api/line/rich_menu/{rich_menu_id}.png", line_rich_menu_image)
    app.router.add_post("/api/slack/press", slack_press)
    app.router.add_post("/api/slack/reply", slack_reply)
    app.router.add_post("/api/slack/act", slack_act)
    app.router.add_post("/api/slack/view_submit", slack_view_submit)
    app.router.add_post("/api/slack/view_close", slack_view_close)
    app.router.add_get("/review", review_page)
    app.router.add_post("/review/refresh", review_refresh)
    app.router.add_post("/review/label", review_label)
    app.router.add_get("/review/matrix/{lang}.png", review_matrix)
    app.router.add_get("/cases", cases_page)
    from devkit.workbench.quality import quality_page  # it builds on this module's helpers

    app.router.add_get("/quality", quality_page)
    app.router.add_static("/static/", STATIC)
    app.on_startup.append(_startup)
    app.on_cleanup.append(_cleanup)
    return app


__all__ = ["Settings", "make_app"]
