"""How amounts, times, items and orders are written for customers, in Japanese and English.

Shared by the actions and the policy wording; no Rasa imports here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Optional
from zoneinfo import ZoneInfo

from bot.remedy_policy.types import ItemView, OrderView

TOKYO = ZoneInfo("Asia/Tokyo")
# LINE quick-reply labels hold at most 20 characters.
BUTTON_LABEL_LIMIT = 20


def yen(amount: int) -> str:
    return f"¥{amount:,}"


def clock(moment: Optional[datetime]) -> str:
    """HH:MM in Japan time, what customers read on their phones."""
    return moment.astimezone(TOKYO).strftime("%H:%M") if moment else "-"


def day_and_clock(moment: Optional[datetime], language: str) -> str:
    if not moment:
        return "-"
    local = moment.astimezone(TOKYO)
    if language == "en":
        return local.strftime("%b %-d %H:%M")
    return f"{local.month}/{local.day} {local:%H:%M}"


def item_names(items: Iterable[ItemView], language: str) -> str:
    names = [item.name(language) for item in items]
    return ", ".join(names) if language == "en" else "、".join(names)


def order_button_label(order: OrderView, language: str) -> str:
    """ "#1001 親子丼ほか2点" / "#1001 Oyakodon +2": short enough for a quick reply."""
    first = order.items[0].name(language) if order.items else ""
    rest = len(order.items) - 1
    if rest > 0:
        first += f" +{rest}" if language == "en" else f"ほか{rest}点"
    return fit_label(f"#{order.number} {first}")


def order_line(order: OrderView, language: str) -> str:
    """One line that tells orders apart: number, shop, when, items, total."""
    when = day_and_clock(order.delivered_at or order.placed_at, language)
    return f"#{order.number} {order.shop_name} {when} {item_names(order.items, language)} {yen(order.total)}"


def item_button_label(item: ItemView, language: str) -> str:
    label = item.name(language)
    if item.quantity > 1:
        label += f" ×{item.quantity}"
    return fit_label(label)


def fit_label(label: str) -> str:
    return label if len(label) <= BUTTON_LABEL_LIMIT else label[: BUTTON_LABEL_LIMIT - 1] + "…"


_STATUS_LABELS = {
    "ja": {
        "placed": "受付済み",
        "preparing": "調理中",
        "out_for_delivery": "配達中",
        "delivered": "お届け済み",
        "cancelled": "キャンセル済み",
    },
    "en": {
        "placed": "Placed",
        "preparing": "Being prepared",
        "out_for_delivery": "Out for delivery",
        "delivered": "Delivered",
        "cancelled": "Cancelled",
    },
}


def order_card(order: OrderView, language: str) -> dict:
    """The order as a card (a Flex bubble on LINE, see gateway/line/messages.py):
    its items with their prices, the delivery fee and the total the customer paid."""
    lang = "en" if language == "en" else "ja"
    items = [{"name": i.name(lang), "price": i.unit_price, "quantity": i.quantity} for i in order.items]
    if order.delivery_fee:
        items.append({"name": "Delivery fee" if lang == "en" else "配送料", "price": order.delivery_fee})
    title = f"Order #{order.number}" if lang == "en" else f"ご注文 #{order.number}"
    return {
        "order_id": order.number,
        "title": f"{title} {order.shop_name}",
        "status": _STATUS_LABELS[lang].get(order.status, order.status),
        "placed_at": day_and_clock(order.placed_at, lang),
        "items": items,
        "total": order.total,
        "alt_text": f"{title} {item_names(order.items, lang)} {yen(order.total)}",
    }
