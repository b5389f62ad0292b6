"""Gateway settings from the environment (names as in shared/DESIGN.md's operational contract).

Secrets (channel secret/token, Rasa token, Sentry DSN) are only ever read from here and
never logged: `Settings.__repr__` hides them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping, Optional, Tuple
from urllib.parse import urlsplit, urlunsplit

from gateway.core.replies import DEFAULT_REPLIES_PATH, ReplyBookError, load_reply_book
from gateway.customer_input import (
    DEFAULT_PLAIN_POSTBACKS,
    MIN_KEY_CHARS,
    check_plain_postbacks,
)
from gateway.line.api import DEFAULT_API_BASE, DEFAULT_DATA_API_BASE

ROOT = Path(__file__).resolve().parents[2]
_SECRET = {
    "channel_secret",
    "agent_approval_key",
    "channel_access_token",
    "rasa_token",
    "sentry_dsn",
    "redis_url",
    "slack_bot_token",
    "slack_signing_secret",
    "postback_signing_key",
    "ops_api_token",
}
DEFAULT_SLACK_API_BASE = "https://slack.com/api/"


def action_health_url(action_server_url: str) -> str:
    """ACTION_SERVER_URL is Rasa's action endpoint (.../webhook); the SDK serves /health
    beside it."""
    parts = urlsplit(action_server_url)
    path = parts.path.rstrip("/")
    if path.endswith("/webhook"):
        path = path[: -len("/webhook")]
    return urlunsplit((parts.scheme, parts.netloc, f"{path}/health", "", ""))


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    return float(raw) if raw not in (None, "") else default


@dataclass
class Settings:
    channel_secret: str
    channel_access_token: str
    line_api_base_url: str = DEFAULT_API_BASE
    line_data_api_base_url: str = DEFAULT_DATA_API_BASE
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: Optional[str] = None
    action_server_health_url: str = "http://127.0.0.1:5055/health"
    redis_url: Optional[str] = None
    sentry_dsn: Optional[str] = None
    host: str = "0.0.0.0"
    port: int = 8080
    attachments_dir: Path = field(default_factory=lambda: ROOT / "var" / "attachments")
    # retry loop for pending events (Rasa / action server down)
    retry_min_s: float = 1.0
    retry_max_s: float = 30.0
    # a reply token lives one minute; older than this, push straight away
    reply_token_max_age_s: float = 50.0
    loading_seconds: int = 20
    # chat turned on in LINE Official Account Manager: the gateway marks a message read
    # once it is answered (or an agent has the case); with chat off LINE marks it itself
    line_mark_as_read: bool = True
    rasa_timeout_s: float = 25.0
    max_concurrency: int = 64
    profile_cache_ttl_s: float = 3600.0
    # Slack handoff (gateway/slack/): without a bot token cases are kept, not posted
    slack_bot_token: Optional[str] = None
    slack_signing_secret: Optional[str] = None
    slack_api_base_url: str = DEFAULT_SLACK_API_BASE
    slack_handoff_channel: Optional[str] = None
    # operations alerts (recurring problems, gateway/slack/ops_alerts.py); None: the handoff channel
    slack_ops_channel: Optional[str] = None
    # who is told of a new case (e.g. "<!subteam^S0123>" for an on-duty user group)
    slack_oncall_mention: str = "<!here>"
    # an unclaimed case is announced again after this long
    slack_reannounce_after_s: float = 600.0
    # where Escalate posts a case (a channel id); None: a broadcast in the case's thread
    slack_supervisor_channel: Optional[str] = None
    # the supervisors (Slack user ids) an escalation mentions
    slack_supervisor_ids: Tuple[str, ...] = ()
    # how often the gateway looks for cases to (re-)announce
    case_announce_interval_s: float = 15.0
    # postback signing (customer_input.py): None -> derived from channel_secret
    postback_signing_key: Optional[str] = None
    # unsigned postbacks accepted (a rich menu's entity-less intents)
    plain_postbacks: Tuple[str, ...] = DEFAULT_PLAIN_POSTBACKS
    # signs agents' approvals for the action server (contracts/approvals.py)
    agent_approval_key: str = ""
    # the reply book (checks on agents' replies, suggested replies): None -> gateway/agent_replies.yml
    agent_replies_path: Optional[Path] = None
    # LINE account link (docs/account-link.md): the shop's login page the link button opens
    # (`?linkToken=...` is added); None: the bot's offer to link is left out
    account_link_login_url: Optional[str] = None
    # the ops API's secret (gateway/ops.py, GET /ops/cases); None: the route answers 503
    ops_api_token: Optional[str] = None
    # Follow-ups at the promised time (gateway/follow_ups.py): asked this long after the
    # promised time; at most this many such pushes a month (None: no limit, 0: none); how
    # often due ones are looked for; a file of seconds added to the clock (tests, emulated
    # LINE only)
    follow_up_after_s: float = 600.0
    line_push_budget_monthly: Optional[int] = None
    follow_up_interval_s: float = 15.0
    follow_up_clock_offset_file: Optional[Path] = None

    def __repr__(self) -> str:  # never print secrets
        shown = ", ".join(
            f"{f.name}={'***' if f.name in _SECRET and getattr(self, f.name) else getattr(self, f.name)!r}"
            for f in fields(self)
        )
        return f"Settings({shown})"

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Settings":
        env = os.environ if env is None else env
        secret = env.get("LINE_CHANNEL_SECRET") or ""
        token = env.get("LINE_CHANNEL_ACCESS_TOKEN") or ""
        if not secret or not token:
            raise SystemExit(
                "LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN must be set "
                "(for the local emulator any test values will do)"
            )
        action_url = env.get("ACTION_SERVER_URL") or "http://127.0.0.1:5055/webhook"
        settings = cls(
            channel_secret=secret,
            channel_access_token=token,
            line_api_base_url=env.get("LINE_API_BASE_URL") or DEFAULT_API_BASE,
            line_data_api_base_url=env.get("LINE_DATA_API_BASE_URL") or DEFAULT_DATA_API_BASE,
            rasa_url=(env.get("RASA_URL") or "http://127.0.0.1:5005").rstrip("/"),
            rasa_token=env.get("RASA_TOKEN") or None,
            action_server_health_url=env.get("ACTION_SERVER_HEALTH_URL") or action_health_url(action_url),
            redis_url=env.get("REDIS_URL") or None,
            sentry_dsn=env.get("SENTRY_DSN") or None,
            host=env.get("HOST") or "0.0.0.0",
            port=int(env.get("PORT") or 8080),
            attachments_dir=Path(env.get("ATTACHMENTS_DIR") or ROOT / "var" / "attachments"),
            retry_min_s=_float(env, "GATEWAY_RETRY_MIN_S", 1.0),
            retry_max_s=_float(env, "GATEWAY_RETRY_MAX_S", 30.0),
            reply_token_max_age_s=_float(env, "GATEWAY_REPLY_TOKEN_MAX_AGE_S", 50.0),
            rasa_timeout_s=_float(env, "GATEWAY_RASA_TIMEOUT_S", 25.0),
            max_concurrency=int(env.get("GATEWAY_MAX_CONCURRENCY") or 64),
            line_mark_as_read=(env.get("LINE_MARK_AS_READ") or "true").strip().lower()
            not in ("0", "false", "no", "off"),
            slack_bot_token=env.get("SLACK_BOT_TOKEN") or None,
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            slack_api_base_url=env.get("SLACK_API_BASE_URL") or DEFAULT_SLACK_API_BASE,
            slack_handoff_channel=env.get("SLACK_HANDOFF_CHANNEL") or None,
            slack_ops_channel=env.get("SLACK_OPS_CHANNEL") or None,
            slack_oncall_mention=env.get("SLACK_ONCALL_MENTION") or "<!here>",
            slack_reannounce_after_s=_float(env, "SLACK_REANNOUNCE_AFTER_S", 600.0),
            slack_supervisor_channel=env.get("SLACK_SUPERVISOR_CHANNEL") or None,
            slack_supervisor_ids=tuple(
                s.strip() for s in (env.get("SLACK_SUPERVISOR_IDS") or "").split(",") if s.strip()
            ),
            case_announce_interval_s=_float(env, "GATEWAY_CASE_ANNOUNCE_INTERVAL_S", 15.0),
            postback_signing_key=env.get("POSTBACK_SIGNING_KEY") or None,
            agent_approval_key=env.get("AGENT_APPROVAL_KEY") or "",
            agent_replies_path=Path(env["AGENT_REPLIES_PATH"]) if env.get("AGENT_REPLIES_PATH") else None,
            account_link_login_url=(env.get("ACCOUNT_LINK_LOGIN_URL") or "").strip() or None,
            ops_api_token=env.get("OPS_API_TOKEN") or None,
            follow_up_after_s=_float(env, "FOLLOW_UP_AFTER_S", 600.0),
            follow_up_interval_s=_float(env, "GATEWAY_FOLLOW_UP_INTERVAL_S", 15.0),
            follow_up_clock_offset_file=(
                Path(env["GATEWAY_CLOCK_OFFSET_FILE"]) if env.get("GATEWAY_CLOCK_OFFSET_FILE") else None
            ),
        )
        budget = (env.get("LINE_PUSH_BUDGET_MONTHLY") or "").strip()
        if budget:
            if not budget.isdigit():
                raise SystemExit(f"LINE_PUSH_BUDGET_MONTHLY must be a whole number of pushes, got {budget!r}")
            settings.line_push_budget_monthly = int(budget)
        try:  # a broken reply book stops the start, with its file and line
            load_reply_book(settings.agent_replies_path or DEFAULT_REPLIES_PATH)
        except ReplyBookError as exc:
            raise SystemExit(f"AGENT_REPLIES_PATH: {exc}")
        if settings.postback_signing_key and len(settings.postback_signing_key) < MIN_KEY_CHARS:
            raise SystemExit(
                f"POSTBACK_SIGNING_KEY must be at least {MIN_KEY_CHARS} characters (e.g. `openssl rand -hex 32`)"
            )
        plain = (env.get("POSTBACK_PLAIN_PAYLOADS") or "").strip()
        if plain:  # "none": no unsigned postback at all
            try:
                settings.plain_postbacks = check_plain_postbacks([] if plain.lower() == "none" else plain.split(","))
            except ValueError as exc:
                raise SystemExit(f"POSTBACK_PLAIN_PAYLOADS: {exc}")
        if settings.slack_bot_token and not (settings.slack_signing_secret and settings.slack_handoff_channel):
            raise SystemExit("SLACK_BOT_TOKEN is set: SLACK_SIGNING_SECRET and SLACK_HANDOFF_CHANNEL must be set too")
        return settings
