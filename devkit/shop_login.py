"""The shop's login page for LINE's account link: the demo's stand-in for the shop's own
login (docs/account-link.md has the contract a real shop implements).

    GET  /account-link?linkToken=...   a small bilingual form: phone number + one order number
    POST /account-link                 checks both against the orders database; on a match
                                       signs a nonce for that customer (contracts/account_link.py,
                                       ACCOUNT_LINK_KEY) and redirects (302) to LINE's
                                       accountLink URL with the link token and the nonce
    GET  /healthz

A failed check says only that it failed (never which part), and an address gets at most
MAX_ATTEMPTS posts per ATTEMPT_WINDOW_S (then 429). The link token is LINE's (single use,
10 minutes): the page only carries it on. Nothing here logs a phone number, an order
number, a token or a nonce.

Settings (environment): ORDERS_DATABASE_URL (the orders database, read with plain SQL;
default the demo's var/orders.db), ACCOUNT_LINK_KEY (shared with the action server),
LINE_ACCOUNT_LINK_URL (default LINE's https://access.line.me/dialog/bot/accountLink; the
demo and the tests point it at the LINE emulator).

    python -m devkit.shop_login --port 8094
"""

from __future__ import annotations

import argparse
import html
import logging
import os
import re
import time
import unicodedata
from collections import defaultdict, deque
from pathlib import Path
from typing import Any, Callable, Deque, Dict, Optional
from urllib.parse import urlencode

from aiohttp import web

from contracts.account_link import KEY_ENV, sign_nonce

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
LINE_ACCOUNT_LINK_URL = "https://access.line.me/dialog/bot/accountLink"
PATH = "/account-link"
MAX_ATTEMPTS = 10
ATTEMPT_WINDOW_S = 300.0
MAX_FIELD = 64

_ORDER_OF = "SELECT c.id, c.phone FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.number = :number"


def order_number(text: str) -> str:
    """ "#２００１ " -> "2001" (as bot/store/repository.py normalizes it)."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch != "#" and not ch.isspace())


def phone_digits(text: str) -> str:
    """The digits of a Japanese phone number, 0 first (+81 -> 0)."""
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", text))
    return "0" + digits[2:] if digits.startswith("81") else digits


class OrdersLookup:
    """Which customer placed order N, and their phone (SQLAlchemy Core, plain SQL)."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine

        self._engine = create_engine(url, future=True)

    def customer_with(self, number: str, phone: str) -> Optional[int]:
        from sqlalchemy import text

        if not number or len(phone) not in (10, 11):
            return None
        with self._engine.connect() as connection:
            row = connection.execute(text(_ORDER_OF), {"number": number}).first()
        if row is None or not row[1] or phone_digits(str(row[1])) != phone:
            return None
        return int(row[0])


class ShopLogin:
    """The page's state: the orders lookup, the key, LINE's URL and the attempts per address."""

    def __init__(
        self,
        orders_url: str,
        key: str,
        line_account_link_url: str = LINE_ACCOUNT_LINK_URL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not key:
            raise ValueError(f"{KEY_ENV} is not set: the login page cannot sign nonces")
        self.lookup = OrdersLookup(orders_url)
        self._key = key
        self.line_account_link_url = line_account_link_url
        self._clock = clock
        self._attempts: Dict[str, Deque[float]] = defaultdict(deque)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024)
        app.router.add_get(PATH, self._form)
        app.router.add_post(PATH, self._submit)
        app.router.add_get("/healthz", self._health)
        return app

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _form(self, request: web.Request) -> web.Response:
        token = request.query.get("linkToken", "")
        if not token or len(token) > 256:
            return _page(
                400,
                "<p>リンクが正しくありません。LINEのトークからもう一度お試しください。<br>"
                "This link is not valid. Please start again from the LINE chat.</p>",
            )
        return _page(200, _FORM.format(token=html.escape(token, quote=True), error=""))

    async def _submit(self, request: web.Request) -> web.Response:
        if not self._allowed(request.remote or "-"):
            log.warning("account link login: too many attempts from one address")
            return _page(
                429, "<p>しばらく時間をおいてからお試しください。<br>Too many attempts: please try again later.</p>"
            )
        form = await request.post()
        token = str(form.get("linkToken") or "")
        number = order_number(str(form.get("order") or "")[:MAX_FIELD])
        phone = phone_digits(str(form.get("phone") or "")[:MAX_FIELD])
        if not token or len(token) > 256:
            return _page(400, "<p>リンクが正しくありません。 / This link is not valid.</p>")
        try:
            customer = self.lookup.customer_with(number, phone)
        except Exception as exc:  # the database unreachable: a failure like any other, logged
            log.error("account link login: orders database error (%s)", type(exc).__name__)
            customer = None
        if customer is None:
            log.info("account link login: check failed")
            error = '<p class="error">確認できませんでした。 / We could not verify these details.</p>'
            return _page(401, _FORM.format(token=html.escape(token, quote=True), error=error))
        nonce = sign_nonce(self._key, customer, time.time())
        log.info("account link login: verified; redirecting to LINE")
        raise web.HTTPFound(f"{self.line_account_link_url}?{urlencode({'linkToken': token, 'nonce': nonce})}")

    def _allowed(self, address: str) -> bool:
        now = self._clock()
        seen = self._attempts[address]
        while seen and seen[0] <= now - ATTEMPT_WINDOW_S:
            seen.popleft()
        if len(seen) >= MAX_ATTEMPTS:
            return False
        seen.append(now)
        return True


_FORM = """<h1>アカウント連携 / Link your account</h1>
<p>ご注文時の電話番号と、ご注文番号をひとつ入力してください。<br>
Enter the phone number you ordered with and one of your order numbers.</p>
{error}
<form method="post" action="{path}">
<input type="hidden" name="linkToken" value="{token}">
<label>電話番号 / Phone number<br><input name="phone" inputmode="tel" autocomplete="tel" required></label>
<label>注文番号 / Order number<br><input name="order" inputmode="numeric" required></label>
<button type="submit">ログインして連携 / Log in and link</button>
</form>""".replace("{path}", PATH)


def _page(status: int, body: str) -> web.Response:
    text = (
        '<!doctype html><html lang="ja"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>Account link</title>'
        "<style>body{font-family:sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}"
        "label{display:block;margin:1rem 0}input{width:100%;padding:.5rem;font-size:1rem}"
        "button{padding:.6rem 1rem;font-size:1rem}.error{color:#b00020}</style></head>"
        f"<body>{body}</body></html>"
    )
    # the link token is in the URL: no referrer, no cache
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return web.Response(status=status, text=text, content_type="text/html", headers=headers)


def from_env(env: Optional[Dict[str, str]] = None) -> ShopLogin:
    env = dict(os.environ if env is None else env)
    url = env.get("ORDERS_DATABASE_URL") or f"sqlite:///{ROOT / 'var' / 'orders.db'}"
    return ShopLogin(url, env.get(KEY_ENV, ""), env.get("LINE_ACCOUNT_LINK_URL") or LINE_ACCOUNT_LINK_URL)


def main(argv: Optional[Any] = None) -> None:  # pragma: no cover - started by devkit/stack.py
    parser = argparse.ArgumentParser(description="The demo shop's login page for LINE's account link")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SHOP_LOGIN_PORT", 8094)))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    web.run_app(from_env().app(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":  # pragma: no cover
    main()
