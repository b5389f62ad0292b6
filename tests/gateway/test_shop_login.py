"""The demo shop's login page for LINE's account link (devkit/shop_login.py): a phone number
and an order number of the customer's -> a signed nonce and a redirect to LINE."""

from __future__ import annotations

import sqlite3
import time
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

from contracts.account_link import verify_nonce
from devkit.shop_login import MAX_ATTEMPTS, ShopLogin

KEY = "shop-login-test-key"
LINE = "https://access.line.me/dialog/bot/accountLink"


@pytest.fixture
def orders_url(tmp_path):
    """The two tables the page reads, as bot/store/models.py has them (the columns it uses)."""
    path = tmp_path / "orders.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE customers (id INTEGER PRIMARY KEY, phone TEXT);
            CREATE TABLE orders (id INTEGER PRIMARY KEY, number TEXT UNIQUE, customer_id INTEGER);
            INSERT INTO customers VALUES (3, '080-1234-5678'), (4, NULL);
            INSERT INTO orders VALUES (1, '2001', 3), (2, '3001', 4);
            """
        )
    return f"sqlite:///{path}"


@pytest_asyncio.fixture
async def page(orders_url):
    server = TestServer(ShopLogin(orders_url, KEY, LINE).app())
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        yield lambda path: str(server.make_url(path)), session
    await server.close()


async def submit(page, phone, order, token="LINKTOKEN123"):
    url, session = page
    async with session.post(
        url("/account-link"), data={"linkToken": token, "phone": phone, "order": order}, allow_redirects=False
    ) as resp:
        return resp.status, resp.headers.get("Location"), await resp.text()


@pytest.mark.asyncio
async def test_the_form_carries_the_link_token_escaped(page):
    url, session = page
    async with session.get(url("/account-link"), params={"linkToken": 'a"><script>'}) as resp:
        body = await resp.text()
        assert resp.status == 200 and "電話番号" in body and "Phone number" in body
        assert 'value="a&quot;&gt;&lt;script&gt;"' in body and "<script>" not in body
        assert resp.headers["Referrer-Policy"] == "no-referrer"
    async with session.get(url("/account-link")) as resp:
        assert resp.status == 400


@pytest.mark.asyncio
@pytest.mark.parametrize("phone, order", [("080-1234-5678", "2001"), ("+81 80 1234 5678", "#２００１")])
async def test_a_matching_phone_and_order_redirect_to_line_with_a_signed_nonce(page, phone, order):
    status, location, _ = await submit(page, phone, order)
    assert status == 302
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == LINE
    query = parse_qs(parts.query)
    assert query["linkToken"] == ["LINKTOKEN123"]
    [nonce] = query["nonce"]
    assert 10 <= len(nonce) <= 255
    assert verify_nonce(KEY, nonce, now=time.time()).customer_id == 3


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "phone, order", [("080-1234-5679", "2001"), ("080-1234-5678", "9999"), ("", "3001"), ("080-1234-5678", "")]
)
async def test_a_failed_check_says_only_that_it_failed(page, phone, order):
    status, location, body = await submit(page, phone, order)
    assert status == 401 and location is None
    assert "確認できませんでした" in body and "LINKTOKEN123" in body  # the form again, to retry


@pytest.mark.asyncio
async def test_attempts_are_limited_per_address(page):
    for _ in range(MAX_ATTEMPTS):
        assert (await submit(page, "080-0000-0000", "2001"))[0] == 401
    status, location, _ = await submit(page, "080-1234-5678", "2001")
    assert status == 429 and location is None


def test_the_page_does_not_start_without_a_key(orders_url):
    with pytest.raises(ValueError):
        ShopLogin(orders_url, "", LINE)
