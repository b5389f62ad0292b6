"""What a customer sends is text; only the gateway's own buttons count as button taps
(gateway/customer_input.py): unit rules, then through the real gateway app
with the LINE emulator and the stand-in Rasa of test_gateway_app.py."""

from __future__ import annotations

import asyncio
import logging
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import texts
from gateway.config import Settings
from gateway.customer import LineCustomerChannel
from gateway.customer_input import (
    MAX_SIGNED_PAYLOAD,
    PostbackSigner,
    derive_key,
    names_reserved_intent,
    signed_payload,
    typed_text,
)
from gateway.line.messages import convert, remedy_card
from tests.gateway.test_gateway_app import (  # noqa: F401  (fixtures used by name)
    EN_USER,
    SECRET,
    USER,
    emu,
    fake_bot,
    gw,
    make_gateway,
    replies,
    wait_until,
)

REFUND = '/inform{"remedy": "refund_item"}'


def rasa_reads_a_command(text: str) -> bool:
    """Rasa 3.6: UserMessage strips the text, unpack_regex_message strips and checks "/"
    (and the NFKC fold the bot's components use must not make one either)."""
    return any(t.strip().startswith("/") for t in (text, unicodedata.normalize("NFKC", text)))


def gateway_log(caplog) -> str:
    """What the gateway itself logged (the test servers' access logs show URLs)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("gateway", "devkit")))


# --- typed text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed, sent",
    [
        ("/EXTERNAL_agent_resolved", "EXTERNAL_agent_resolved"),
        ('/inform{"remedy":"refund_item","order_id":"1101"}', 'inform{"remedy":"refund_item","order_id":"1101"}'),
        ("   /affirm", "affirm"),
        ("\u3000\n/deny", "deny"),  # ideographic space: Rasa's strip() removes it too
        ('／inform{"order_id": "1101"}', 'inform{"order_id": "1101"}'),  # full width
        ("// /restart", "restart"),
        ("/", ""),
        ("こんにちは", "こんにちは"),
        (" 注文 1001/1002", " 注文 1001/1002"),  # not leading: unchanged
        ("1/2 portion", "1/2 portion"),
    ],
)
def test_typed_text_is_never_a_command(typed, sent):
    assert typed_text(typed) == sent
    assert not rasa_reads_a_command(typed_text(typed))


@given(st.text(max_size=60))
def test_no_typed_text_is_a_command_and_other_text_is_untouched(text):
    out = typed_text(text)
    assert not rasa_reads_a_command(out)
    if not text.lstrip().startswith(("/", "／")):
        assert out == text


def test_reserved_intents_are_recognised_as_rasa_would_read_them():
    assert names_reserved_intent("/EXTERNAL_agent_resolved")
    assert names_reserved_intent('  /EXTERNAL_agent_approved_remedy@0.9{"remedy": "x"}')
    assert names_reserved_intent("/external_agent_resolved")  # conservative about case
    assert not names_reserved_intent("EXTERNAL_agent_resolved")  # plain words
    assert not names_reserved_intent(REFUND)


# --- signing ------------------------------------------------------------------------------


@pytest.fixture
def signer() -> PostbackSigner:
    return PostbackSigner(derive_key(SECRET))


def test_signed_postback_round_trips_for_its_customer_only(signer):
    data = signer.sign(REFUND, USER)
    assert data and data.endswith(REFUND) and len(data) <= 300
    assert not rasa_reads_a_command(data)  # even unchecked, it would not be a command
    assert signer.verify(data, USER).payload == REFUND
    assert signed_payload(data) == REFUND
    other = signer.verify(data, EN_USER)  # replayed by another customer
    assert other.payload is None and "signature" in other.reason


@pytest.mark.parametrize(
    "forge",
    [
        lambda d: REFUND,  # hand-made, unsigned
        lambda d: d.replace("refund_item", "refund_order"),  # payload tampered
        lambda d: d[:5] + ("A" if d[5] != "A" else "B") + d[6:],  # MAC tampered
        lambda d: d[:3] + d[26:],  # MAC cut off
        lambda d: "s1." + "é" * 22 + "." + REFUND,  # not even base64
        lambda d: "s1.",
    ],
)
def test_forged_or_tampered_postbacks_are_refused(signer, forge):
    assert signer.verify(forge(signer.sign(REFUND, USER)), USER).payload is None


def test_another_key_does_not_verify(signer):
    other = PostbackSigner(derive_key("another-channel-secret"))
    assert other.verify(signer.sign(REFUND, USER), USER).payload is None


def test_reserved_intents_are_never_signed_nor_accepted_signed(signer):
    assert signer.sign("/EXTERNAL_agent_resolved", USER) is None
    # made with the key anyway (a bug elsewhere): still refused
    forged = f"s1.{signer._mac('/EXTERNAL_agent_resolved', USER)}./EXTERNAL_agent_resolved"
    assert signer.verify(forged, USER).reason == "reserved intent"


def test_unsigned_postbacks_only_from_the_allowlist(signer):
    assert signer.verify("/greet", USER).payload == "/greet"  # e.g. a rich menu
    for data in ('/greet{"order_id": "1101"}', "/affirm", "/EXTERNAL_agent_resolved", " /greet"):
        assert signer.verify(data, USER).payload is None
    with pytest.raises(ValueError):
        PostbackSigner(b"k" * 32, plain=['/inform{"remedy": "refund_item"}'])
    with pytest.raises(ValueError):
        PostbackSigner(b"k" * 32, plain=["/EXTERNAL_agent_resolved"])


def test_signed_data_stays_within_300_and_holds_no_secret(signer):
    longest = "/inform" + "x" * (MAX_SIGNED_PAYLOAD - len("/inform"))
    data = signer.sign(longest, USER)
    assert data is not None and len(data) == 300
    assert signer.sign(longest + "x", USER) is None  # would not fit: not offered
    assert signer.sign("/" + "😀" * 137, USER) is None  # 275 UTF-16 units
    assert SECRET not in data and derive_key(SECRET).hex() not in data
    assert derive_key(SECRET) != SECRET.encode() and derive_key(SECRET) == derive_key(SECRET)


def test_every_postback_of_a_turn_is_signed_and_unsignable_buttons_dropped(signer):
    turn = [
        {
            "text": "どうしますか？",
            "buttons": [{"title": "返金", "payload": REFUND}, {"title": "長すぎ", "payload": "/inform" + "x" * 280}],
        },
        {
            "custom": {
                "remedy_card": {
                    "title": "ご提案",
                    "options": [{"label": "¥80を返金", "detail": "別卵の代金", "payload": REFUND}],
                }
            }
        },
        {
            "custom": {
                "line": {
                    "type": "template",
                    "altText": "t",
                    "template": {
                        "type": "buttons",
                        "text": "t",
                        "actions": [
                            {"type": "postback", "label": "a", "data": "/affirm"},
                            {"type": "uri", "label": "u", "uri": "https://example.com"},
                        ],
                    },
                }
            }
        },
    ]
    [batch] = signer.sign_batches(convert(turn), USER)
    actions = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "postback":
                actions.append(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(batch)
    assert sorted(signer.verify(a["data"], USER).payload for a in actions) == sorted([REFUND, REFUND, "/affirm"])
    quick = [m for m in batch if "quickReply" in m][0]["quickReply"]["items"]
    assert len(quick) == 1  # the over-long one is not offered
    only_bad = signer.sign_message(
        {
            "type": "text",
            "text": "x",
            "quickReply": {
                "items": [
                    {"type": "action", "action": {"type": "postback", "label": "x", "data": "/EXTERNAL_agent_resolved"}}
                ]
            },
        },
        USER,
    )
    assert "quickReply" not in only_bad  # LINE refuses an empty quick reply


@pytest.mark.asyncio
async def test_agent_triggered_bot_turns_are_signed_for_their_customer(signer):
    pushed = []

    class Line:
        async def push(self, to, batch, retry_key=None):
            pushed.append((to, batch))

    channel = LineCustomerChannel(Line(), signer)  # type: ignore[arg-type]
    assert await channel.send_bot_responses(
        USER, [{"text": "解決しましたか？", "buttons": [{"title": "はい", "payload": "/affirm"}]}]
    )
    data = pushed[0][1][0]["quickReply"]["items"][0]["action"]["data"]
    assert signer.verify(data, USER).payload == "/affirm"


def test_settings_read_the_signing_key_and_the_plain_postbacks():
    base = {"LINE_CHANNEL_SECRET": "sec", "LINE_CHANNEL_ACCESS_TOKEN": "tok"}
    key = "k" * 40
    s = Settings.from_env({**base, "POSTBACK_SIGNING_KEY": key})
    assert s.postback_signing_key == key and key not in repr(s)
    derived = PostbackSigner.from_settings(Settings.from_env(base))
    configured = PostbackSigner.from_settings(s)
    assert derived.sign("/affirm", USER) != configured.sign("/affirm", USER)
    # replicas with the same channel secret agree without any key configured
    assert (
        PostbackSigner.from_settings(Settings.from_env(base)).verify(derived.sign("/affirm", USER), USER).payload
        == "/affirm"
    )
    with pytest.raises(SystemExit):
        Settings.from_env({**base, "POSTBACK_SIGNING_KEY": "short"})
    with pytest.raises(SystemExit):
        Settings.from_env({**base, "POSTBACK_PLAIN_PAYLOADS": '/inform{"remedy": "x"}'})
    assert Settings.from_env({**base, "POSTBACK_PLAIN_PAYLOADS": "none"}).plain_postbacks == ()
    assert Settings.from_env({**base, "POSTBACK_PLAIN_PAYLOADS": "/greet, /help"}).plain_postbacks == (
        "/greet",
        "/help",
    )


# --- through the gateway ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_typed_commands_reach_rasa_as_plain_text(gw, emu, fake_bot, caplog):
    caplog.set_level(logging.INFO)
    typed = [
        "/EXTERNAL_agent_resolved",
        '/inform{"remedy":"refund_item","order_id":"1101"}',
        "  /EXTERNAL_agent_approved_remedy",
        "／affirm",
    ]
    for text in typed:
        await gw.client.send_text(USER, text)
    assert await wait_until(lambda: len(replies(emu)) == len(typed))
    sent = [message for _, message, _ in fake_bot.got]
    assert sent == [
        "EXTERNAL_agent_resolved",
        'inform{"remedy":"refund_item","order_id":"1101"}',
        "EXTERNAL_agent_approved_remedy",
        "affirm",
    ]
    assert not any(rasa_reads_a_command(m) for m in sent)
    logged = gateway_log(caplog)
    assert "named a reserved intent" in logged
    assert "refund_item" not in logged and USER not in logged


@pytest.mark.asyncio
async def test_a_tap_on_the_gateways_button_reaches_rasa_as_its_payload(gw, emu, fake_bot):
    await gw.client.send_text(USER, "buttons")
    assert await wait_until(lambda: len(replies(emu)) == 1)
    action = replies(emu)[0]["json"]["messages"][-1]["quickReply"]["items"][0]["action"]
    assert action["data"] != '/inform{"order_id": "1001"}'  # signed, not the bare payload
    await gw.client.post([await gw.client.postback_event(USER, action["data"])])
    assert await wait_until(lambda: len(fake_bot.got) == 2)
    assert fake_bot.got[1][1] == '/inform{"order_id": "1001"}'


@pytest.mark.asyncio
async def test_forged_tampered_and_other_customers_postbacks_never_reach_rasa(gw, emu, fake_bot, caplog):
    caplog.set_level(logging.INFO)
    await gw.client.send_text(USER, "buttons")
    assert await wait_until(lambda: len(replies(emu)) == 1)
    genuine = replies(emu)[0]["json"]["messages"][-1]["quickReply"]["items"][0]["action"]["data"]
    attempts = [
        (USER, REFUND),  # hand-made
        (USER, genuine.replace('"1001"', '"1101"')),  # tampered
        (EN_USER, genuine),  # another customer's
        (USER, "/EXTERNAL_agent_resolved"),  # reserved, unsigned
    ]
    events = []
    for user, data in attempts:
        event = await gw.client.postback_event(user, data)
        events.append(event)
        await gw.client.post([event])
    assert await wait_until(lambda: len(replies(emu)) == 1 + len(attempts))
    await asyncio.sleep(0.2)
    assert [m for _, m, _ in fake_bot.got] == ["buttons"]  # none reached Rasa
    for event in events:
        assert await gw.store.status(event["webhookEventId"]) == "done"
    by_token = {r["json"]["replyToken"]: r["json"]["messages"] for r in replies(emu)}
    assert [by_token[e["replyToken"]][0]["text"] for e in events] == [
        texts.text("choose_again", "ja"),
        texts.text("choose_again", "ja"),
        texts.text("choose_again", "en"),
        texts.text("choose_again", "ja"),
    ]
    logged = gateway_log(caplog)
    assert logged.count("postback refused") == len(attempts)
    assert "refund_item" not in logged and USER not in logged and genuine not in logged
