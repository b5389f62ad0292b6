"""Demo customers and orders, with times relative to `now` so the demo never goes stale.

What each order demonstrates (tests and the demo script rely on these exact values):
- 1001 デモ 太郎, 親子丼 delivered 20 min ago without its 別卵 (¥80): missing item.
- 1002 デモ 太郎, 特上にぎり寿司 ¥4,800: a refund above the bot's limit (needs a person).
- 1003 デモ 太郎, delivered 5 days ago: the claim window has passed.
- 1004 デモ 太郎, out for delivery, 35 min past the promised time: late delivery.
- 1005 デモ 太郎, shipped porcelain mug: damaged goods.
- 1006 デモ 太郎, still being prepared: can be cancelled.
- 1101 Emma Brown, delivered 15 min ago: an English-speaking customer.
- 2001 山田 花子, ordered on the web without LINE: a guest finds it by order number.

Times are stored in UTC; the bot shows them in Asia/Tokyo.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional, Tuple

from sqlalchemy.orm import Session

from bot.store.models import Customer, Order, OrderItem

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

FOOD, SHIPPING = "food_delivery", "shipping"
DEMO_LINE_USER_ID = "U00000000000000000000000000000001"
ENGLISH_LINE_USER_ID = "U00000000000000000000000000000002"


@dataclass(frozen=True)
class ItemSeed:
    sku: str
    name_ja: str
    name_en: str
    category: str
    unit_price: int
    quantity: int = 1


@dataclass(frozen=True)
class OrderSeed:
    """An order with its times as offsets before `now` (negative: in the future)."""

    number: str
    kind: str
    status: str
    shop_name: str
    placed_ago: timedelta
    promised_ago: timedelta
    delivered_ago: Optional[timedelta]
    delivery_fee: int
    items: Tuple[ItemSeed, ...]


@dataclass(frozen=True)
class CustomerSeed:
    display_name: str
    line_user_id: Optional[str]
    language: str
    phone: Optional[str]
    orders: Tuple[OrderSeed, ...]


def _delivered(
    number: str, kind: str, shop_name: str, delivered_ago: timedelta, fee: int, *items: ItemSeed
) -> OrderSeed:
    """A delivered order that arrived on time: food takes 45 minutes, parcels two days."""
    trip = 45 * MINUTE if kind == FOOD else 2 * DAY
    slack = 5 * MINUTE if kind == FOOD else 4 * HOUR
    return OrderSeed(
        number, kind, "delivered", shop_name, delivered_ago + trip, delivered_ago - slack, delivered_ago, fee, items
    )


CHEESEBURGER = ItemSeed("CHEESEBURGER", "チーズバーガー", "Cheeseburger", "dish", 880)
FRIES = ItemSeed("FRIES", "フライドポテト", "French fries", "side", 350)
COLA = ItemSeed("COLA", "コーラ", "Cola", "drink", 200)

DEMO_CUSTOMERS: Tuple[CustomerSeed, ...] = (
    CustomerSeed(
        "デモ 太郎",
        DEMO_LINE_USER_ID,
        "ja",
        "090-0000-0001",
        (
            OrderSeed(
                "1001",
                FOOD,
                "delivered",
                "とり政 渋谷店",
                70 * MINUTE,
                25 * MINUTE,
                20 * MINUTE,
                300,
                (
                    ItemSeed("OYAKODON", "親子丼", "Oyakodon", "dish", 980),
                    ItemSeed("EXTRA-EGG", "別卵", "Extra egg", "topping", 80),
                    ItemSeed("MISO-SOUP", "味噌汁", "Miso soup", "side", 150),
                ),
            ),
            _delivered(
                "1002",
                FOOD,
                "すし匠",
                26 * HOUR,
                400,
                ItemSeed("NIGIRI-PREMIUM", "特上にぎり寿司", "Premium nigiri sushi", "dish", 4800),
                ItemSeed("CHAWANMUSHI", "茶碗蒸し", "Chawanmushi", "side", 380),
            ),
            _delivered(
                "1003",
                FOOD,
                "カレーの店 ガネーシャ",
                5 * DAY,
                300,
                ItemSeed("CURRY-RICE", "カレーライス", "Curry rice", "dish", 850),
                FRIES,
            ),
            OrderSeed(
                "1004",
                FOOD,
                "out_for_delivery",
                "麺屋 一心",
                75 * MINUTE,
                35 * MINUTE,
                None,
                300,
                (
                    ItemSeed("SHOYU-RAMEN", "醤油ラーメン", "Shoyu ramen", "dish", 900),
                    ItemSeed("GYOZA", "餃子", "Gyoza", "side", 400),
                ),
            ),
            _delivered(
                "1005",
                SHIPPING,
                "うつわ工房",
                20 * HOUR,
                500,
                ItemSeed("HASAMI-MUG", "波佐見焼 マグカップ", "Hasami porcelain mug", "goods", 2400),
            ),
            OrderSeed(
                "1006",
                FOOD,
                "preparing",
                "バーガーズ 恵比寿",
                5 * MINUTE,
                -35 * MINUTE,
                None,
                300,
                (CHEESEBURGER, FRIES, COLA),
            ),
        ),
    ),
    CustomerSeed(
        "Emma Brown",
        ENGLISH_LINE_USER_ID,
        "en",
        None,
        (
            _delivered("1101", FOOD, "Burger Lab Roppongi", 15 * MINUTE, 300, CHEESEBURGER, FRIES, COLA),
            _delivered(
                "1102",
                SHIPPING,
                "Kiln & Co.",
                30 * HOUR,
                500,
                ItemSeed("CERAMIC-BOWL", "陶器の鉢", "Ceramic bowl", "goods", 1800),
            ),
        ),
    ),
    # A guest who ordered on the web: no LINE account yet (linked after a verified match).
    CustomerSeed(
        "山田 花子",
        None,
        "ja",
        "080-1234-5678",
        (
            _delivered(
                "2001",
                FOOD,
                "牛丼太郎 新宿店",
                30 * MINUTE,
                250,
                ItemSeed("GYUDON", "牛丼", "Gyudon", "dish", 650),
                ItemSeed("ONSEN-TAMAGO", "温泉卵", "Soft-boiled egg", "topping", 100),
            ),
        ),
    ),
)


def seed_demo_data(session: Session, now: datetime) -> None:
    """Adds the demo customers with their orders; the caller commits (all or nothing)."""
    session.add_all(_customer(seed, now) for seed in DEMO_CUSTOMERS)


def _customer(seed: CustomerSeed, now: datetime) -> Customer:
    return Customer(
        line_user_id=seed.line_user_id,
        display_name=seed.display_name,
        language=seed.language,
        phone=seed.phone,
        created_at=now - 90 * DAY,
        orders=[_order(o, now) for o in seed.orders],
    )


def _order(seed: OrderSeed, now: datetime) -> Order:
    return Order(
        number=seed.number,
        kind=seed.kind,
        status=seed.status,
        shop_name=seed.shop_name,
        placed_at=now - seed.placed_ago,
        promised_at=now - seed.promised_ago,
        delivered_at=None if seed.delivered_ago is None else now - seed.delivered_ago,
        delivery_fee=seed.delivery_fee,
        items=[_item(i) for i in seed.items],
    )


def _item(seed: ItemSeed) -> OrderItem:
    return OrderItem(
        sku=seed.sku,
        name_ja=seed.name_ja,
        name_en=seed.name_en,
        category=seed.category,
        unit_price=seed.unit_price,
        quantity=seed.quantity,
    )
