"""Finding the order of a customer the shop does not know yet (their LINE id is linked to
no customer), without revealing anything before they are verified.

Asked "what is the order number?", such a customer may not have it. They can instead give
the phone number on the order and then the shop: only when both match one customer's
recent order is anything shown, and then their LINE id is linked to that customer, so the
next claim needs no number. A failed check says only that it failed (never which part),
and after `escalation.identity_failures` (bot/handoff.yml) in a conversation the phone route is closed: a person helps.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot import escalation
from bot.actions import services
from bot.actions.matching import kana_reading, morpheme_readings, morphemes
from bot.components.writing_systems import katakana_to_hiragana, normalize
from bot.remedy_policy.types import OrderView

log = logging.getLogger(__name__)

# `verify_step`: which answer the order question waits for from an unknown customer.
PHONE, SHOP = "phone", "shop"
# How far back an order found by phone and shop may be.
RECENT_DAYS = 14
# "I don't have the number" / "can I use my phone number?": the phone route.
_WANTS_OTHER_WAY = re.compile(
    r"(電話番号|でんわばんごう|電話で|携帯|わから|分から|わかりませ|分かりませ|見つから|みつから|ない[よね]?$|"
    r"\b(phone|mobile|don'?t (have|know)|can'?t find|cannot find|no (order )?number|lost)\b)"
)
# The button's payload fills order_id with this (no order has it); the form reads it as
# "find it another way" without going through the classifier.
BY_PHONE = "by_phone"
# Saying one has no order number, read as such whatever the classifier makes of it
# (「注文番号がわかりません」 often reads as frustration).
_NO_NUMBER = re.compile(
    r"((番号|ばんごう).{0,6}(わから|分から|わかりませ|分かりませ|知らな|しらな|忘れ|わすれ|無い|ない|な[いく]て|見つから)|"
    r"\b(don'?t|do not|can'?t|cannot) (have|find|remember|see)( (the|an|my))?( order)? (number|no\.?)\b|"
    r"\b(no|lost( the| my)?) (order )?number\b)"
)
# A Japanese phone number: 10 or 11 digits starting with 0 (hyphens, spaces, +81 allowed).
_PHONE = re.compile(r"(\+?81[- ]?|0)\d{1,4}[- ]?\d{1,4}[- ]?\d{3,4}")


def wants_other_way(text: str) -> bool:
    return bool(_WANTS_OTHER_WAY.search(normalize(text).lower()))


def has_no_number(text: str) -> bool:
    """ "I don't have the order number" in so many words (the button, or typed)."""
    return text == BY_PHONE or bool(_NO_NUMBER.search(normalize(text).lower()))


def phone_digits(text: str) -> Optional[str]:
    """The phone number in the text as its digits (0 first), or None."""
    # the dashes phones and IMEs type: ー (long vowel), − (minus), ‐ ― (hyphen, bar)
    match = _PHONE.search(re.sub(r"[ー−‐―－]", "-", normalize(text)))
    if not match:
        return None
    digits = re.sub(r"\D", "", match.group())
    if digits.startswith("81"):
        digits = "0" + digits[2:]
    return digits if len(digits) in (10, 11) else None


def _folded(text: str) -> str:
    return re.sub(r"[\s・･\-_.,、。&'’]", "", katakana_to_hiragana(normalize(text)).lower())


def shop_matches(text: str, shop_name: str) -> bool:
    """ "牛丼太郎です" names 牛丼太郎 新宿店, and so does "Gyudon Taro" (its romaji); one of
    the name's words of 2+ characters (3+ letters in romaji) is enough."""
    said = _folded(text)
    words = [w for w in re.split(r"[\s　]+", normalize(shop_name)) if w]
    readings = [kana_reading(w) for w in words] + [r for w in words for r in morpheme_readings(w)]
    parts = words + [m for w in words for m in morphemes(w)] + readings  # 新宿店, 新宿, シンジュク
    keys = {_folded(shop_name)} | {_folded(p) for p in parts}
    keys = {k for k in keys if len(k) >= 2 and k not in ("店", "てん", "shop", "store")}
    if any(k in said or (len(said) >= 3 and said in k) for k in keys if said):
        return True
    latin = _plain_romaji(said) if said.isascii() else ""
    romaji = {_plain_romaji(romaji_of(r)) for r in readings}
    romaji = {r for r in romaji if len(r) >= 4 and r not in ("shop",)}  # not 店 (ten) alone
    return bool(latin) and any(r in latin or (len(latin) >= 4 and latin in r) for r in romaji)


# Kana to Hepburn romaji, enough for shop names typed by English speakers.
_KANA = dict(
    zip(
        "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん"
        "がぎぐげござじずぜぞだぢづでどばびぶべぼぱぴぷぺぽぁぃぅぇぉ",
        "a i u e o ka ki ku ke ko sa shi su se so ta chi tsu te to na ni nu ne no ha hi fu he ho "
        "ma mi mu me mo ya yu yo ra ri ru re ro wa o n ga gi gu ge go za ji zu ze zo da ji zu de do "
        "ba bi bu be bo pa pi pu pe po a i u e o".split(),
    )
)
_SMALL_Y = {"ゃ": "a", "ゅ": "u", "ょ": "o"}


def romaji_of(kana: str) -> str:
    """ギュウドンタロウ -> gyuudontarou (long marks dropped, っ doubles the next consonant)."""
    out: List[str] = []
    double = False
    for ch in katakana_to_hiragana(kana):
        if ch in _SMALL_Y and out and len(out[-1]) >= 2:
            stem = out.pop()[:-1]  # ぎ+ゅ: g + yu; し+ゃ: sh + a (the y is in sh, ch, j already)
            glide = "" if stem.endswith(("sh", "ch", "j")) else "y"
            out.append(stem + glide + _SMALL_Y[ch])
        elif ch == "っ":
            double = True
        elif ch in _KANA:
            syllable = _KANA[ch]
            out.append(syllable[0] + syllable if double and syllable[0] not in "aiueon" else syllable)
            double = False
        elif ch.isascii() and ch.isalnum():
            out.append(ch.lower())
    return "".join(out)


def _plain_romaji(text: str) -> str:
    """Romaji as people type it: no long vowels (gyuudon = gyudon, tarou = taro), no spaces."""
    text = re.sub(r"[^a-z0-9]", "", text.lower())
    return re.sub(r"(?<=[ou])u|(?<=o)o|(?<=a)a|(?<=i)i|(?<=e)e", "", text)


def failures(tracker: Tracker) -> int:
    return int(tracker.get_slot("verify_failures") or 0)


def start(tracker: Tracker) -> Dict[Text, Any]:
    """Asks for the phone number next (the order question's ask action says it)."""
    reason = escalation.after_identity_failures(failures(tracker))
    if reason:
        return {"order_id": None, "handoff_reason": reason}
    return {"order_id": None, "verify_step": PHONE, "failed_attempts": 0}


def phone_answer(dispatcher: CollectingDispatcher, text: str) -> Optional[Dict[Text, Any]]:
    """The phone number noted (not checked yet: nothing is revealed before the shop)."""
    digits = phone_digits(text)
    if digits is None:
        dispatcher.utter_message(response="utter_phone_not_understood")
        return None
    return {"order_id": None, "verify_phone": digits, "verify_step": SHOP, "failed_attempts": 0}


def verified_orders(tracker: Tracker, text: str) -> List[OrderView]:
    """The recent orders of the one customer with the phone given whose shop is the one
    named now; empty when nothing (or more than one customer) matches."""
    digits = str(tracker.get_slot("verify_phone") or "")
    repository = services.repository()
    found: Dict[int, List[OrderView]] = {}
    for customer in repository.customers_with_phone(digits) if digits else []:
        orders = repository.recent_orders(customer.id, services.now(), days=RECENT_DAYS, limit=10)
        matching = [o for o in orders if shop_matches(text, o.shop_name)]
        if matching:
            found[customer.id] = matching
    return next(iter(found.values())) if len(found) == 1 else []


def shop_answer(dispatcher: CollectingDispatcher, tracker: Tracker, text: str) -> Dict[Text, Any]:
    """Phone and shop checked together. On a match the LINE id is linked to the customer
    and the order question goes on as for a known customer; otherwise one more failure."""
    orders = verified_orders(tracker, text)
    cleared = {"verify_step": None, "verify_phone": None}
    if orders and services.repository().link_line_user(orders[0].customer_id, tracker.sender_id):
        log.info("an unknown LINE user was verified by phone and shop and linked to a customer")
        dispatcher.utter_message(response="utter_identity_verified")
        chosen = orders[0].number if len(orders) == 1 else None
        return {**cleared, "order_id": chosen, "failed_attempts": 0}
    count = failures(tracker) + 1
    dispatcher.utter_message(response="utter_identity_not_verified")
    reason = escalation.after_identity_failures(count)
    if reason:
        return {**cleared, "order_id": None, "verify_failures": count, "handoff_reason": reason}
    return {**cleared, "order_id": None, "verify_failures": count}


def ask(dispatcher: CollectingDispatcher, tracker: Tracker, other_way: Tuple[str, str]) -> None:
    """The order question for an unknown customer, at the step they are at; `other_way` is
    the (title, payload) of the "I don't have the number" button."""
    step = tracker.get_slot("verify_step")
    if step == PHONE:
        dispatcher.utter_message(response="utter_ask_phone")
    elif step == SHOP:
        dispatcher.utter_message(response="utter_ask_shop")
    elif escalation.after_identity_failures(failures(tracker)):
        dispatcher.utter_message(response="utter_ask_order_number")
    else:
        # the number, or another way that shows nothing until it matches
        dispatcher.utter_message(
            response="utter_ask_order_number", buttons=[{"title": other_way[0], "payload": other_way[1]}]
        )
