"""Rasa REST responses -> LINE Messaging API message objects (plain dicts, LINE JSON shape).

Input: the list Rasa's REST channel returns, each item with any of
`text`, `buttons` [{title, payload}], `image` (URL), `custom` (dict).

Rules (LINE limits from the Messaging API reference):
- text: one text message per item, split into several when longer than 5000 characters,
  at line breaks where possible (a single longer line is cut hard).
- buttons: become one quick reply (max 13 items) on the last text message of the turn.
  LINE shows a quick reply only on the last message received, so if non-text messages
  follow that text, the quick reply moves to the turn's final message. Each button is a
  `postback` action: `data` = the Rasa payload (max 300 chars; a longer payload can't be
  shortened without changing its meaning, so that button is dropped with a warning),
  `displayText` = the title (max 300), `label` = the title cut to 20 characters.
  Buttons of several items in one turn are combined in order (duplicates by payload
  dropped), capped at 13.
- image: an image message (same URL for the original and the preview).
- custom:
  * `{"order_card": {...}}` -> a Flex bubble listing the order's items and prices:
        {"order_card": {
            "order_id": "A1001",            # required
            "title": "ご注文 A1001",          # optional, default "Order <id>"
            "status": "配達済み",              # optional, shown under the title
            "placed_at": "2024-05-01 12:30", # optional, shown as given
            "items": [{"name": "親子丼", "price": 980, "quantity": 1},
                      {"name": "別卵", "price": 80}],   # quantity defaults to 1
            "total": 1060,                   # optional, computed from items if absent
            "currency": "JPY",               # optional, default JPY (shown as ¥1,060)
            "alt_text": "..."                # optional, notification/preview text
        }}
  * `{"remedy_card": {"title": "...", "alt_text": "...", "options": [
            {"label": "¥80を返金", "detail": "別卵の代金¥80を返金", "payload": "/inform{...}",
             "recommended": true}]}}` -> a Flex bubble: each option's detail above a button
        that posts its payload back (label cut to 20 characters)
  * `{"account_link": {"url": "https://shop.example/account-link?linkToken=...",
            "title": "...", "text": "...", "label": "..."}}` -> a Flex bubble with one
        URI button to the shop's login page (LINE's account link). The bot sends
        `{"account_link": {}}`; the gateway (account_link.py) fills in the URL with a fresh
        link token and the texts in the customer's language, or leaves it out. Without
        a usable https/http URL nothing is drawn.
  * `{"line": <LINE message dict or list of them>}` -> passed through unchanged (escape
    hatch for other rich messages).
  * anything else is ignored (logged at debug level, without content).
- batches: at most 5 messages per API call. When a turn has more than 5, adjacent plain
  text messages are merged first (pushes cost quota, replies are free); what still
  exceeds 5 is split into batches: the first for the reply, the rest for push.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Iterable, List, Optional, Sequence

log = logging.getLogger(__name__)

MAX_TEXT = 5000
MAX_MESSAGES_PER_CALL = 5
MAX_QUICK_REPLY_ITEMS = 13
MAX_LABEL = 20
MAX_POSTBACK_DATA = 300
MAX_DISPLAY_TEXT = 300
MAX_ALT_TEXT = 400
MAX_URI = 1000  # a URI action's uri

Message = Dict[str, Any]


def _units(s: str) -> int:
    """Length as LINE counts it, conservatively in UTF-16 code units (emoji count 2)."""
    return len(s.encode("utf-16-le")) // 2


def _cut(s: str, limit: int) -> str:
    """Cut to `limit` UTF-16 units without splitting a character."""
    out, n = [], 0
    for ch in s:
        w = _units(ch)
        if n + w > limit:
            break
        out.append(ch)
        n += w
    return "".join(out)


def _shorten(s: str, limit: int) -> str:
    """Cut with an ellipsis when too long (labels)."""
    if _units(s) <= limit:
        return s
    return _cut(s, limit - 1) + "…"


def split_text(text: str, limit: int = MAX_TEXT) -> List[str]:
    """Split into chunks of at most `limit`, at line breaks where possible."""
    if _units(text) <= limit:
        return [text]
    chunks: List[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while _units(line) > limit:  # one line too long on its own: cut hard
            if current:
                chunks.append(current)
                current = ""
            head = _cut(line, limit)
            chunks.append(head)
            line = line[len(head) :]
        if _units(current) + _units(line) > limit:
            chunks.append(current)
            current = ""
        current += line
    if current:
        chunks.append(current)
    # the line break that caused a split is noise at a message's end
    chunks = [c.rstrip("\r\n") for c in chunks]
    return [c for c in chunks if c.strip()]


def text_message(text: str) -> Message:
    return {"type": "text", "text": text}


# Message types that can quote a customer's message (LINE: text, textV2 and sticker).
QUOTING_TYPES = ("text", "textV2", "sticker")


def quoting(messages: List[Message], quote_token: Optional[str]) -> List[Message]:
    """`messages` with the first one that can quote carrying `quote_token`, so the customer
    sees which of their messages this answers. Unchanged without a token."""
    if not quote_token:
        return messages
    out = [dict(m) for m in messages]
    for m in out:
        if m.get("type") in QUOTING_TYPES:
            m["quoteToken"] = quote_token
            break
    return out


def quick_reply_item(title: str, payload: str) -> Optional[Dict[str, Any]]:
    """One quick reply button as a postback action; None when the payload is too long."""
    if _units(payload) > MAX_POSTBACK_DATA:
        log.warning("dropping a button: postback payload over %d characters", MAX_POSTBACK_DATA)
        return None
    title = title or payload
    return {
        "type": "action",
        "action": {
            "type": "postback",
            "label": _shorten(title, MAX_LABEL),
            "data": payload,
            "displayText": _cut(title, MAX_DISPLAY_TEXT),
        },
    }


def quick_reply(buttons: Iterable[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    items: List[Dict[str, Any]] = []
    seen: set = set()
    for b in buttons:
        payload = str(b.get("payload") or "")
        if not payload or payload in seen:
            continue
        item = quick_reply_item(str(b.get("title") or ""), payload)
        if item is None:
            continue
        seen.add(payload)
        items.append(item)
    if len(items) > MAX_QUICK_REPLY_ITEMS:
        log.warning("quick reply cut from %d to %d buttons", len(items), MAX_QUICK_REPLY_ITEMS)
        items = items[:MAX_QUICK_REPLY_ITEMS]
    return {"items": items} if items else None


def image_message(url: str) -> Message:
    return {"type": "image", "originalContentUrl": url, "previewImageUrl": url}


def format_price(amount: Any, currency: str = "JPY") -> str:
    if currency.upper() == "JPY":
        return f"¥{int(round(float(amount))):,}"
    return f"{float(amount):,.2f} {currency.upper()}"


def order_card(card: Dict[str, Any]) -> Message:
    """Flex bubble for an order: title, status, one row per item with its price, total."""
    order_id = str(card.get("order_id", ""))
    currency = str(card.get("currency") or "JPY")
    items = card.get("items") or []
    title = str(card.get("title") or f"Order {order_id}".strip())

    header: List[Dict[str, Any]] = [
        {"type": "text", "text": title, "weight": "bold", "size": "lg", "wrap": True},
    ]
    for key in ("status", "placed_at"):
        if card.get(key):
            header.append({"type": "text", "text": str(card[key]), "size": "sm", "color": "#888888", "wrap": True})

    rows: List[Dict[str, Any]] = []
    computed_total = 0.0
    for it in items:
        qty = int(it.get("quantity") or 1)
        price = float(it.get("price") or 0)
        computed_total += price * qty
        name = str(it.get("name", ""))
        label = f"{name} ×{qty}" if qty != 1 else name
        rows.append(
            {
                "type": "box",
                "layout": "horizontal",
                "contents": [
                    {"type": "text", "text": label or "-", "size": "sm", "flex": 3, "wrap": True},
                    {
                        "type": "text",
                        "text": format_price(price * qty, currency),
                        "size": "sm",
                        "flex": 2,
                        "align": "end",
                    },
                ],
            }
        )
    total = card.get("total", computed_total)
    body = header + [{"type": "separator", "margin": "md"}]
    body.append(
        {
            "type": "box",
            "layout": "vertical",
            "margin": "md",
            "spacing": "sm",
            "contents": rows or [{"type": "text", "text": "-", "size": "sm"}],
        }
    )
    body.append({"type": "separator", "margin": "md"})
    body.append(
        {
            "type": "box",
            "layout": "horizontal",
            "margin": "md",
            "contents": [
                {"type": "text", "text": "合計 / Total", "size": "sm", "weight": "bold", "flex": 3},
                {
                    "type": "text",
                    "text": format_price(total, currency),
                    "size": "sm",
                    "weight": "bold",
                    "flex": 2,
                    "align": "end",
                },
            ],
        }
    )
    alt = card.get("alt_text") or f"{title}: " + ", ".join(
        f"{it.get('name', '')} {format_price(float(it.get('price') or 0) * int(it.get('quantity') or 1), currency)}"
        for it in items
    )
    return {
        "type": "flex",
        "altText": _shorten(str(alt), MAX_ALT_TEXT),
        "contents": {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": body}},
    }


def remedy_card(card: Dict[str, Any]) -> Message:
    """Flex bubble offering remedies: each option's full description (amount, time) above a
    button that sends its Rasa payload as a postback, like the quick reply would."""
    title = str(card.get("title") or "")
    contents: List[Dict[str, Any]] = []
    if title:
        contents.append({"type": "text", "text": title, "weight": "bold", "size": "md", "wrap": True})
    for option in card.get("options") or []:
        payload = str(option.get("payload") or "")
        if not payload or len(payload) > MAX_POSTBACK_DATA:
            log.warning("remedy card option without a usable payload dropped")
            continue
        label = str(option.get("label") or payload)
        if option.get("detail"):
            contents.append({"type": "text", "text": str(option["detail"]), "size": "sm", "wrap": True, "margin": "lg"})
        contents.append(
            {
                "type": "button",
                "style": "primary" if option.get("recommended") else "secondary",
                "height": "sm",
                "margin": "sm",
                "action": {
                    "type": "postback",
                    "label": _shorten(label, MAX_LABEL),
                    "data": payload,
                    "displayText": _shorten(label, MAX_DISPLAY_TEXT),
                },
            }
        )
    alt = card.get("alt_text") or title or "Options"
    return {
        "type": "flex",
        "altText": _shorten(str(alt), MAX_ALT_TEXT),
        "contents": {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": contents}},
    }


def account_link_card(card: Dict[str, Any]) -> Optional[Message]:
    """Flex bubble with a URI button to the shop's login page; None without a usable URL."""
    url = str(card.get("url") or "")
    if not url.startswith(("https://", "http://")) or len(url) > MAX_URI:
        log.warning("account link offer without a usable URL dropped")
        return None
    title = str(card.get("title") or "")
    body: List[Dict[str, Any]] = []
    if title:
        body.append({"type": "text", "text": title, "weight": "bold", "size": "md", "wrap": True})
    if card.get("text"):
        body.append({"type": "text", "text": str(card["text"]), "size": "sm", "wrap": True, "margin": "md"})
    label = str(card.get("label") or "Log in")
    button = {
        "type": "button",
        "style": "primary",
        "height": "sm",
        "action": {"type": "uri", "label": _shorten(label, MAX_LABEL), "uri": url},
    }
    bubble: Dict[str, Any] = {"type": "bubble"}
    if body:
        bubble["body"] = {"type": "box", "layout": "vertical", "contents": body}
    bubble["footer"] = {"type": "box", "layout": "vertical", "contents": [button]}
    alt = card.get("alt_text") or title or label
    return {"type": "flex", "altText": _shorten(str(alt), MAX_ALT_TEXT), "contents": bubble}


def _custom_messages(custom: Any) -> List[Message]:
    if not isinstance(custom, dict):
        return []
    if "account_link" in custom:
        card = custom["account_link"]
        made = account_link_card(card) if isinstance(card, dict) and card.get("url") else None
        return [made] if made else []
    if isinstance(custom.get("order_card"), dict):
        return [order_card(custom["order_card"])]
    if isinstance(custom.get("remedy_card"), dict):
        return [remedy_card(custom["remedy_card"])]
    line = custom.get("line")
    if isinstance(line, dict):
        return [line]
    if isinstance(line, list):
        return [m for m in line if isinstance(m, dict)]
    log.debug("ignoring a custom payload with keys %s", sorted(custom)[:5])
    return []


def _is_plain_text(m: Message) -> bool:
    return m.get("type") == "text" and set(m) == {"type", "text"}


def _merge_texts(messages: List[Message]) -> List[Message]:
    """Merge adjacent plain text messages, staying within the 5000-character limit."""
    out: List[Message] = []
    for m in messages:
        if (
            out
            and _is_plain_text(m)
            and _is_plain_text(out[-1])
            and _units(out[-1]["text"]) + 2 + _units(m["text"]) <= MAX_TEXT
        ):
            out[-1] = text_message(out[-1]["text"] + "\n\n" + m["text"])
        else:
            out.append(m)
    return out


def to_line_messages(
    responses: Sequence[Dict[str, Any]], merge: bool = True, fallback_prompt: str = "ご選択ください / Please choose"
) -> List[Message]:
    """Convert one Rasa turn to a flat list of LINE messages (not yet batched)."""
    messages: List[Message] = []
    buttons: List[Dict[str, Any]] = []
    for r in responses or []:
        if r.get("text"):
            messages.extend(text_message(c) for c in split_text(str(r["text"])))
        if r.get("image"):
            messages.append(image_message(str(r["image"])))
        if r.get("custom") is not None:
            messages.extend(_custom_messages(r["custom"]))
        if r.get("buttons"):
            buttons.extend(b for b in r["buttons"] if isinstance(b, dict))

    if merge and len(messages) > MAX_MESSAGES_PER_CALL:
        messages = _merge_texts(messages)

    qr = quick_reply(buttons) if buttons else None
    if qr:
        if not messages:
            messages.append(text_message(fallback_prompt))
        # The last text message normally ends the turn; if something follows it, the quick
        # reply still goes on the final message, the only one LINE shows it on.
        messages[-1] = dict(messages[-1], quickReply=qr)
    return messages


def batches(messages: Sequence[Message], size: int = MAX_MESSAGES_PER_CALL) -> List[List[Message]]:
    """At most `size` messages per API call: [reply batch, push batch, push batch, ...]."""
    return [list(messages[i : i + size]) for i in range(0, len(messages), size)]


def convert(responses: Sequence[Dict[str, Any]]) -> List[List[Message]]:
    """One Rasa turn -> message batches; the first goes in the reply, the rest are pushed."""
    return batches(to_line_messages(responses))


__all__ = [
    "account_link_card",
    "MAX_LABEL",
    "MAX_MESSAGES_PER_CALL",
    "MAX_POSTBACK_DATA",
    "MAX_QUICK_REPLY_ITEMS",
    "MAX_TEXT",
    "batches",
    "convert",
    "format_price",
    "order_card",
    "quick_reply",
    "split_text",
    "to_line_messages",
]
