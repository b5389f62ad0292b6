"""Understanding free-typed answers inside a claim: order numbers, ordinals, item names.

Pure functions (no Rasa, no database) so they are easy to test with tables.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable, List, Optional, Sequence

import fugashi

from bot.components.scripts import JAPANESE_RUN, katakana_to_hiragana, normalize
from bot.policy.types import ItemView, OrderView

# A button payload names an item by id so that two items with similar names never mix.
ITEM_REFERENCE = re.compile(r"^item:(\d+)$")
_ORDER_NUMBER = re.compile(r"\d{3,8}")
_ORDINALS = {
    1: ("1", "一", "最初", "はじめ", "初め", "上", "first", "1st", "top"),
    2: ("2", "二", "2番", "second", "2nd"),
    3: ("3", "三", "third", "3rd"),
    4: ("4", "四", "fourth", "4th"),
    5: ("5", "五", "fifth", "5th"),
}
_LAST = ("最後", "一番下", "last", "bottom")


def order_number_in(text: str) -> Optional[str]:
    """The first 3-8 digit number in the text (full-width digits count)."""
    match = _ORDER_NUMBER.search(normalize(text))
    return match.group() if match else None


def ordinal_in(text: str, count: int) -> Optional[int]:
    """0-based index chosen by "2番目", "the second one", "最後" ... among `count` options."""
    folded = normalize(text).strip()
    if any(word in folded for word in _LAST):
        return count - 1 if count else None
    for position, words in _ORDINALS.items():
        if position > count:
            break
        for word in words:
            if re.fullmatch(rf"(#|no\.?\s*)?{re.escape(word)}", folded) or re.search(
                rf"(^|\s){re.escape(word)}\s*(番目?|つ目|個目|one\b|option\b|です|で)", folded
            ):
                return position - 1
    return None


@lru_cache(maxsize=1)
def _tagger() -> fugashi.Tagger:
    return fugashi.Tagger()


# English filler around an item name ("the egg one", "my fries").
_FILLER = re.compile(r"\b(the|a|an|my|one|ones|some|pls|please|it|was|is)\b")
_KANJI = re.compile(r"[\u4e00-\u9fff]")
_JAPANESE = re.compile(JAPANESE_RUN.pattern)


def _reading(text: str, per_character: bool = False) -> str:
    if per_character:
        # In a compound a kanji takes another reading (別卵 -> べつらん) than the word
        # customers type (卵 -> たまご), so read each character on its own too.
        words = [w for ch in text for w in _tagger()(ch)]
    else:
        words = list(_tagger()(text))
    return "".join(getattr(w.feature, "kana", None) or w.surface for w in words)


@lru_cache(maxsize=4096)
def _forms(text: str) -> tuple:
    """Ways to compare a name: as written (in hiragana) and as its kana readings (卵 -> たまご)."""
    written = _FILLER.sub(" ", katakana_to_hiragana(normalize(text))).replace(" ", "")
    readings = {_reading(text), _reading(text, per_character=True)} if _KANJI.search(text) else set()
    folded = {katakana_to_hiragana(normalize(r)).replace(" ", "") for r in readings}
    return tuple(sorted(({written} | folded) - {""}))


@lru_cache(maxsize=4096)
def _content_words(text: str) -> tuple:
    """The nouns of a free-typed answer ("ポテトのやつ" -> ポテト), Latin words included."""
    if not _JAPANESE.search(text):
        return ()
    return tuple(
        w.surface for w in _tagger()(normalize(text))
        if len(w.surface) >= 2 and getattr(w.feature, "pos1", "") == "名詞"
    )


def _names_match(mention: str, name: str) -> bool:
    if _mention_matches(mention, name):
        return True
    return any(_mention_matches(word, name) for word in _content_words(mention) if word != mention)


def _mention_matches(mention: str, name: str) -> bool:
    for said in _forms(mention):
        for known in _forms(name):
            # One kana says nothing, one kanji does (卵 in 別卵).
            long_enough = len(said) >= 2 or bool(_KANJI.search(said))
            if long_enough and (said in known or known in said):
                return True
            if said == known:
                return True
    return False


def match_items(mentions: Iterable[str], items: Sequence[ItemView]) -> List[ItemView]:
    """The order's items the customer named (by button id, Japanese or English name)."""
    chosen: List[ItemView] = []
    for mention in mentions:
        if not mention:
            continue
        reference = ITEM_REFERENCE.match(str(mention).strip())
        for item in items:
            if item in chosen:
                continue
            if reference:
                if int(reference.group(1)) == item.item_id:
                    chosen.append(item)
            elif any(_names_match(str(mention), name) for name in (item.name_ja, item.name_en, item.sku)):
                chosen.append(item)
    return _most_specific(chosen, mentions)


def _most_specific(chosen: List[ItemView], mentions: Iterable[str]) -> List[ItemView]:
    """"別卵" names the extra egg, not every item whose name contains an egg.

    When a mention equals one item's name exactly, items matched only loosely by the same
    mention are dropped.
    """
    exact = [
        item for item in chosen
        if any(set(_forms(str(m))) & (set(_forms(item.name_ja)) | set(_forms(item.name_en))) for m in mentions if m)
    ]
    return exact or chosen


def match_order(text: str, orders: Sequence[OrderView]) -> Optional[OrderView]:
    """The listed order a free-typed answer points at: number, ordinal or an item in it."""
    number = order_number_in(text)
    if number:
        return next((o for o in orders if o.number == number), None)
    index = ordinal_in(text, len(orders))
    if index is not None:
        return orders[index]
    hits = [o for o in orders if any(_names_match(text, n) for i in o.items for n in (i.name_ja, i.name_en))]
    return hits[0] if len(hits) == 1 else None


def orders_mentioning(mentions: Iterable[str], orders: Sequence[OrderView]) -> List[OrderView]:
    """Orders that contain an item the customer already named."""
    mentions = [m for m in mentions if m]
    return [o for o in orders if mentions and match_items(mentions, o.items)]


# What a message says about each item it names: missing ("別卵が付いていない", "without the
# fries") or arrived ("親子丼は来たけど", "got the burger though"). Japanese says it after
# the item, English mostly before; the words between two items belong to both windows.
_JA_MISSING_AFTER = re.compile(
    r"^(が|は|も|の|って)?[^。！？!?]{0,8}?(ない|なかっ|無い|無かっ|な[くけ]て|ませんでし|てません|足りな|たりな|"
    r"抜け|ぬけ|忘れ|わすれ|欠け|漏れ|もれ|来てな|きてな|届いてな|入ってな|ついてな|付いてな)")
_JA_ARRIVED_AFTER = re.compile(
    r"^(は|も)[^。！？!?]{0,4}?(来た|きた|来まし|届いた|届きまし|とどいた|あった|ありまし|入って(い)?た|入ってまし|大丈夫)")
_EN_MISSING_BEFORE = re.compile(
    r"\b(without|no|missing|forgot|forgotten|forget|lacking|minus|left out|where'?s|where is)\s+"
    r"((the|my|any|a|an|their|our|its)\s+)?$")
_EN_MISSING_AFTER = re.compile(
    r"^\s*((is|was|were|are)\s+)?(missing|not (there|included|in (the|my) (bag|box|order))|absent|never (came|arrived)|"
    r"didn'?t (come|arrive|show)|did not (come|arrive)|wasn'?t (there|included|in)|weren'?t)")
_EN_ARRIVED_BEFORE = re.compile(r"\b(got|received|have|had|came with)\s+((the|my|a|an)\s+)?$")
_EN_ARRIVED_AFTER = re.compile(r"^\s*((is|was|were|are)\s+)?(came|arrived|here|there|fine|ok|okay)\b")
_ONLY_A_JOIN = re.compile(r"^\s*(,|、|と|や|and|&|\+)?\s*((the|my)\s+)?$")
# "AとBがない" says it of both; "親子丼、別卵がない" only of the egg (a comma is no "and")
_AND = re.compile(r"^\s*(と|や|and|&|\+)\s*((the|my)\s+)?$")


def claimed_items(text: str, items: Sequence[ItemView], mentions: Iterable[str] = ()) -> List[ItemView]:
    """Of the order's items a message names, the ones it says are missing; when it only
    says which arrived, the others it names; every named one when it says neither."""
    said = katakana_to_hiragana(normalize(text))
    spans = []  # (start, end, item)
    words = [(w, None) for w in mentions if w] + [(n, i) for i in items for n in (i.name_ja, i.name_en) if n]
    for word, known in words:
        # the entity extractor may keep a joining particle ("味噌汁と"): the name is the rest
        folded = re.sub(r"(と|や|、|,)$", "", katakana_to_hiragana(normalize(str(word))))
        targets = [known] if known is not None else match_items([str(word)], items)
        if len(targets) != 1 or not folded:
            continue
        for match in re.finditer(re.escape(folded), said):
            spans.append((match.start(), match.end(), targets[0]))
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    kept = []
    for span in spans:
        if not kept or span[0] >= kept[-1][1]:
            kept.append(span)
    states: List[Optional[str]] = []
    joined_to_next: List[bool] = []
    for n, (start, end, item) in enumerate(kept):
        before = said[kept[n - 1][1] if n else 0:start]
        after = said[end:kept[n + 1][0] if n + 1 < len(kept) else len(said)]
        if _JA_MISSING_AFTER.search(after) or _EN_MISSING_BEFORE.search(before) or _EN_MISSING_AFTER.search(after):
            state: Optional[str] = "missing"
        elif _JA_ARRIVED_AFTER.search(after) or _EN_ARRIVED_BEFORE.search(before) or _EN_ARRIVED_AFTER.search(after):
            state = "arrived"
        elif n and states[-1] is not None and _ONLY_A_JOIN.match(before):
            state = states[-1]  # "got the burger and coke": one status for both
        else:
            state = None
        states.append(state)
        joined_to_next.append(n + 1 < len(kept) and bool(_AND.match(after)))
    for n in range(len(kept) - 2, -1, -1):
        if states[n] is None and joined_to_next[n]:
            states[n] = states[n + 1]  # "味噌汁と別卵が入っていない": the status comes after both
    status: dict = {}
    for (_, _, item), state in zip(kept, states):
        if state is not None or item.item_id not in status:  # a later bare mention keeps what was said
            status[item.item_id] = state
    named = [item for item in items if item.item_id in status]
    missing = [i for i in named if status[i.item_id] == "missing"]
    if missing:
        return missing
    arrived = {i.item_id for i in named if status[i.item_id] == "arrived"}
    return [i for i in named if i.item_id not in arrived] if arrived else named
