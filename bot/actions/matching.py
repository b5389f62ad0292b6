"""Understanding free-typed answers inside a claim: order numbers, ordinals, item names.

Pure functions (no Rasa, no database) so they are easy to test with tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple

import fugashi
import yaml

from bot.components.writing_systems import JAPANESE_RUN, katakana_to_hiragana, normalize
from bot.remedy_policy.loader import PolicyError, _Reader, compose_yaml
from bot.remedy_policy.types import ItemView, OrderView

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


# A number written as an order's: "#2001", "order 2001", "order no. 2001", 「注文1001」,
# 「注文番号1001」, "No.1001".
_MARKED_ORDER_NUMBER = re.compile(
    r"(?:#|no\.?\s*|order\s*(?:no\.?|number|num|#)?\s*|注文\s*(?:番号|no\.?|#)?\s*(?:は|:)?\s*)(\d{3,8})(?!\d)",
    re.IGNORECASE,
)


def marked_order_number(text: str) -> Optional[str]:
    """The number the text marks as an order's ("#2001", "order 2001", 「注文1001」), if any."""
    match = _MARKED_ORDER_NUMBER.search(normalize(text))
    return match.group(1) if match else None


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


def _kana(word: "fugashi.UnidicNode") -> str:
    kana = getattr(word.feature, "kana", None)
    return kana if kana and kana != "*" else word.surface  # unknown words keep their spelling


def _reading(text: str, per_morpheme: bool = False) -> str:
    if per_morpheme:
        # In a compound a kanji takes another reading (別卵 -> べつらん) than the word
        # customers type (卵 -> たまご, so ベツタマゴ), so read each morpheme on its own too.
        # (fugashi reuses its nodes on the next call: take the surfaces first.)
        return "".join(_reading(surface) for surface in [w.surface for w in _tagger()(text)])
    return "".join(_kana(w) for w in _tagger()(text))


def kana_reading(text: str) -> str:
    """The text as MeCab reads it, in kana (牛丼太郎 -> ギュウドンタロウ)."""
    return _reading(text)


def morphemes(text: str) -> List[str]:
    """The text's morphemes as written (新宿店 -> 新宿, 店)."""
    return [w.surface for w in _tagger()(text)]


def morpheme_readings(text: str) -> List[str]:
    """Each morpheme's reading in kana (新宿店 -> シンジュク, テン)."""
    return [_reading(surface) for surface in morphemes(text)]


@lru_cache(maxsize=4096)
def _forms(text: str) -> tuple:
    """Ways to compare a name: as written (in hiragana) and as its kana readings (卵 -> たまご)."""
    written = _FILLER.sub(" ", katakana_to_hiragana(normalize(text))).replace(" ", "")
    readings = {_reading(text), _reading(text, per_morpheme=True)} if _KANJI.search(text) else set()
    folded = {katakana_to_hiragana(normalize(r)).replace(" ", "") for r in readings}
    return tuple(sorted(({written} | folded) - {""}))


@lru_cache(maxsize=4096)
def _content_words(text: str) -> tuple:
    """The nouns of a free-typed answer ("ポテトのやつ" -> ポテト), Latin words included."""
    if not _JAPANESE.search(text):
        return ()
    return tuple(
        w.surface
        for w in _tagger()(normalize(text))
        if len(w.surface) >= 2 and getattr(w.feature, "pos1", "") == "名詞"
    )


# --- the alias lexicon (bot/item_words.yml) ---------------------------------------------
ITEM_WORDS_PATH = Path(__file__).resolve().parents[1] / "item_words.yml"


@dataclass(frozen=True)
class ItemWords:
    # (canonical word, the other ways customers write it), in file order
    groups: Tuple[Tuple[str, Tuple[str, ...]], ...]
    # real English words that are never read as a misspelt item word ("cold" is not "cola")
    not_typos: FrozenSet[str]


def parse_item_words(text: str, source: str = "item_words.yml") -> ItemWords:
    """The lexicon; a mistake names the file and the line (the policy loader's reader)."""
    root = compose_yaml(text, source)
    r = _Reader(source)
    top = r.mapping(root, "")
    r.no_unknown(top, "", ("version", "words", "not_typos"))
    if r.scalar(r.required(top, root, "", "version"), "version") != 1:
        raise r.fail(top["version"][1], "version", "unsupported version (expected 1)")
    words_node = r.required(top, root, "", "words")
    groups = tuple(_word_group(r, key, value) for key, value in r.mapping(words_node, "words").values())
    not_typos: Tuple[str, ...] = ()
    if "not_typos" in top:
        not_typos = r.string_list(top["not_typos"][1], "not_typos")
        for node, word in zip(top["not_typos"][1].value, not_typos):
            if not _is_latin(word):
                raise r.fail(node, "not_typos", f"{word!r}: only Latin words are read with typos")
    return ItemWords(groups, frozenset(_fold(w) for w in not_typos))


def _word_group(r: _Reader, key: yaml.Node, value: yaml.Node) -> Tuple[str, Tuple[str, ...]]:
    canonical = str(key.value)
    path = f"words.{canonical}"
    aliases = r.string_list(value, path)
    if not aliases:
        raise r.fail(value, path, "list at least one other way to write it, e.g. [温玉, onsen egg]")
    seen = {_compact(canonical)}
    for node, alias in zip([key] + list(value.value), [canonical] + list(aliases)):
        if len(_compact(alias)) < 2 and not _KANJI.search(alias):
            raise r.fail(node, path, f"{alias!r} is too short to tell items apart (one kana or letter)")
    for node, alias in zip(value.value, aliases):
        if _compact(alias) in seen:
            raise r.fail(node, path, f"{alias!r} is listed twice")
        seen.add(_compact(alias))
    return canonical, aliases


@lru_cache(maxsize=1)
def item_words(path: Optional[str] = None) -> ItemWords:
    chosen = Path(path) if path else ITEM_WORDS_PATH
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(f"{chosen}: cannot read the item words: {error.strerror}") from error
    return parse_item_words(text, str(chosen))


def _fold(text: str) -> str:
    return katakana_to_hiragana(normalize(text))


def _compact(text: str) -> str:
    """Folded, without spaces and dashes: "Soft-boiled egg" = "soft boiled egg"."""
    return re.sub(r"[\s\-・]", "", _fold(text))


def _is_latin(text: str) -> bool:
    return not _JAPANESE.search(text)


# --- Latin words: plurals and small typos ---------------------------------------------
_LATIN_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _latin_tokens(folded: str) -> List[Tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group()) for m in _LATIN_TOKEN.finditer(folded)]


def _singular(word: str) -> str:
    """ "fries" and "frys" both -> "fry", "potatoes" -> "potato", "burgers" -> "burger"."""
    for plural, single in (("ies", "y"), ("oes", "o"), ("ches", "ch"), ("shes", "sh")):
        if word.endswith(plural) and len(word) > len(plural) + 1:
            return word[: -len(plural)] + single
    return word[:-1] if word.endswith("s") and not word.endswith("ss") and len(word) > 3 else word


def _one_slip(a: str, b: str) -> bool:
    """At most one letter added, dropped, changed or two neighbours swapped."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    start = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    if len(a) == len(b):
        swapped = a[start + 1 : start + 2] + a[start : start + 1] + a[start + 2 :] == b[start:]
        return a[start + 1 :] == b[start + 1 :] or swapped
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return longer[start + 1 :] == shorter[start:]


def _same_latin_word(typed: Sequence[str], known: str) -> bool:
    """Typed words (joined: "chese burger" = "cheseburger") said as the known item word.

    Typo rule: one slip (see _one_slip) is forgiven when the typed word has at least 4
    letters, keeps the first letter (people rarely mistype that one, and it keeps "price"
    from "rice"), and is neither a real word listed in not_typos ("cold" is not "cola",
    "late" is not "latte") nor itself a word of the lexicon ("soda" is not "soba").
    Shorter words ("bad", "egg") must match exactly, except for a plural.
    """
    said, meant = "".join(typed), _compact(known)
    if said == meant or _singular(said) == _singular(meant):
        return True
    words = item_words()
    if len(said) < 4 or len(meant) < 4 or said[0] != meant[0]:
        return False
    if any(t in words.not_typos for t in typed) or (len(typed) == 1 and said in _lexicon_latin()):
        return False
    return _one_slip(said, meant) or _one_slip(_singular(said), _singular(meant))


@lru_cache(maxsize=1)
def _lexicon_latin() -> FrozenSet[str]:
    """Every Latin word the lexicon knows, plural or not."""
    words = {t for c, aliases in item_words().groups for w in (c, *aliases) for _, _, t in _latin_tokens(_fold(w))}
    return frozenset(words | {_singular(w) for w in words})


def _latin_places(folded: str, phrases: Sequence[str]) -> List[Tuple[int, int]]:
    """Where in the text one of the Latin phrases is written (word by word, typos allowed)."""
    tokens = _latin_tokens(folded)
    places = []
    for i in range(len(tokens)):
        for size in (4, 3, 2, 1):  # the longest run first: "french fries" before "fries"
            run = tokens[i : i + size]
            if len(run) == size and any(_same_latin_word([t for _, _, t in run], p) for p in phrases):
                places.append((run[0][0], run[-1][1]))
                break
    return places


@lru_cache(maxsize=4096)
def _item_words(item: ItemView) -> Tuple[str, ...]:
    """The item's names, then every lexicon word of a group whose canonical word names it."""
    names = tuple(n for n in (item.name_ja, item.name_en) if n)
    words = list(names)
    for canonical, aliases in item_words().groups:
        if _canonical_names(canonical, names) or any(_compact(n) in {_compact(a) for a in aliases} for n in names):
            words += [canonical, *aliases]
    return tuple(dict.fromkeys(words))


def _canonical_names(canonical: str, names: Sequence[str]) -> bool:
    """The canonical word is (part of) the item's name: バーガー names チーズバーガー, 卵 names
    別卵 and 温泉卵, 温泉卵 names 温泉たまご (same reading). English words count whole only
    ("egg" is no part of "eggplant")."""
    for name in names:
        if _is_latin(canonical):
            if _is_latin(name) and _latin_places(_fold(name), [canonical]):
                return True
        elif not _is_latin(name):
            said, known = set(_forms(canonical)), set(_forms(name))
            if said & known or any(s in k for s in said for k in known if _KANJI.search(s) or len(s) >= 3):
                return True
    return False


def _names_match(mention: str, name: str) -> bool:
    if _mention_matches(mention, name):
        return True
    return any(_mention_matches(word, name) for word in _content_words(mention) if word != mention)


def _mention_matches(mention: str, name: str) -> bool:
    if _is_latin(mention) and _is_latin(name):
        return _latin_mention_matches(mention, name)
    for said in _forms(mention):
        for known in _forms(name):
            # One kana says nothing, one kanji does (卵 in 別卵).
            long_enough = len(said) >= 2 or bool(_KANJI.search(said))
            if long_enough and (said in known or known in said):
                return True
            if said == known:
                return True
    return False


def _latin_mention_matches(mention: str, name: str) -> bool:
    """English compares word by word: "the fries" names "French fries", "egg" names "Extra
    egg", "burger" names "Cheeseburger" (an English compound ends with its head), but "cola"
    is no part of "chocolate"."""
    said = _FILLER.sub(" ", _fold(mention))
    if _latin_places(said, [name]):
        return True
    typed = [t for _, _, t in _latin_tokens(said)]
    if not typed or len("".join(typed)) < 2:
        return False
    known = [t for _, _, t in _latin_tokens(_fold(name))]
    if len(typed) == 1 and len(typed[0]) >= 4 and any(k.endswith(_singular(typed[0])) for k in known):
        return True
    return any(
        _same_latin_word(typed, " ".join(known[i : i + size]))
        for size in range(1, len(typed) + 2)
        for i in range(len(known) - size + 1)
    )


def match_items(mentions: Iterable[str], items: Sequence[ItemView]) -> List[ItemView]:
    """The order's items the customer named (by button id, Japanese or English name, or a
    word of bot/item_words.yml)."""
    mentions = list(mentions)
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
            elif any(_names_match(str(mention), name) for name in (item.name_ja, item.name_en, item.sku)) or any(
                _alias_named(str(mention), word) for word in _item_words(item)
            ):
                chosen.append(item)
    return _most_specific(chosen, mentions)


def _alias_named(mention: str, alias: str) -> bool:
    """An English lexicon word names the item only whole ("fried" is not "fried potatoes"):
    the lexicon lists the short forms itself."""
    if _is_latin(mention) and _is_latin(alias):
        return bool(_latin_places(_FILLER.sub(" ", _fold(mention)), [alias]))
    return _names_match(mention, alias)


def _most_specific(chosen: List[ItemView], mentions: Iterable[str]) -> List[ItemView]:
    """ "別卵" names the extra egg, not every item whose name contains an egg.

    When a mention equals one item's name (or a lexicon word of it) exactly, items matched
    only loosely by the same mention are dropped.
    """
    exact = [
        item
        for item in chosen
        if any(set(_forms(str(m))) & {f for w in _item_words(item) for f in _forms(w)} for m in mentions if m)
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
    # the words of all listed orders at once, so that ベツタマゴ is the 別卵 and not the たまご
    # of another order's 温泉卵
    spans = _without_overlaps(_item_spans(text, [i for o in orders for i in o.items]))
    hits = [o for o in orders if any(i in o.items for _, _, named in spans for i in named)]
    if not hits:
        hits = [o for o in orders if any(_names_match(text, n) for i in o.items for n in (i.name_ja, i.name_en))]
    return hits[0] if len(hits) == 1 else None


def orders_mentioning(mentions: Iterable[str], orders: Sequence[OrderView]) -> List[OrderView]:
    """Orders that contain an item the customer already named."""
    mentions = [m for m in mentions if m]
    return [o for o in orders if mentions and match_items(mentions, o.items)]


# --- items named inside a sentence -----------------------------------------------------
Span = Tuple[int, int, Tuple[ItemView, ...]]  # where in the folded text, and which items it names


@lru_cache(maxsize=1024)
def _read_along(text: str) -> Tuple[str, Dict[int, int], Dict[int, int]]:
    """The sentence's kana reading (in hiragana) and where its words start and end in the
    text, by their offsets in the reading: 親子丼のベツタマゴ reads おやこどんのべつたまご."""
    said = normalize(text)
    reading, starts, ends = "", {}, {}
    cursor = 0
    for surface, kana in [(w.surface, _fold(_kana(w))) for w in _tagger()(said)]:
        start = said.find(surface, cursor)
        if start < 0:
            continue  # a character NFKC changed: that word stays unread
        cursor = start + len(surface)
        starts[len(reading)] = start
        reading += kana
        ends[len(reading)] = cursor
    return reading, starts, ends


@lru_cache(maxsize=4096)
def _written_and_read(item: ItemView) -> Tuple[Tuple[str, ...], Tuple[str, ...], Tuple[str, ...]]:
    """How the item may appear in a sentence: Japanese spellings, kana readings, Latin phrases."""
    japanese = [w for w in _item_words(item) if not _is_latin(w)]
    written = {f for w in japanese for f in (_fold(w), _compact(w))}
    # a reading the tagger made up needs three kana to be told from other words (ちゃ in ちゃんと)
    read = {f for w in japanese for f in _forms(w) if not _KANJI.search(f) and len(f) >= 3} - written
    latin = tuple(w for w in _item_words(item) if _is_latin(w))
    keep = {w for w in written if _KANJI.search(w) or len(w) >= 2}
    return tuple(sorted(keep)), tuple(sorted(read)), latin


def _places_of(text: str, item: ItemView) -> Set[Tuple[int, int]]:
    said = _fold(text)
    written, read, latin = _written_and_read(item)
    places = {(m.start(), m.end()) for w in written + read for m in re.finditer(re.escape(w), said)}
    reading, starts, ends = _read_along(text)
    for word in read + written:
        # whole words only: the たまご of ベツタマゴ is no egg of its own
        places |= {
            (starts[m.start()], ends[m.end()])
            for m in re.finditer(re.escape(word), reading)
            if m.start() in starts and m.end() in ends
        }
    return places | set(_latin_places(said, latin))


def _item_spans(text: str, items: Sequence[ItemView]) -> List[Span]:
    """Every place the text names one of the items, in any spelling; a place that names
    several (egg in an order with 別卵 and 温泉卵) names them all."""
    found: Dict[Tuple[int, int], List[ItemView]] = {}
    for item in items:
        for place in _places_of(text, item):
            found.setdefault(place, []).append(item)
    return [(start, end, tuple(named)) for (start, end), named in found.items()]


# What a message says about each item it names: missing ("別卵が付いていない", "without the
# fries") or arrived ("親子丼は来たけど", "got the burger though"). Japanese says it after
# the item, English mostly before; the words between two items belong to both windows.
_JA_MISSING_AFTER = re.compile(
    r"^(が|は|も|の|って)?[^。！？!?]{0,8}?(ない|なかっ|無い|無かっ|な[くけ]て|ませんでし|てません|足りな|たりな|"
    r"抜け|ぬけ|忘れ|わすれ|欠け|漏れ|もれ|来てな|きてな|届いてな|入ってな|ついてな|付いてな)"
)
_JA_ARRIVED_AFTER = re.compile(
    r"^(は|も)[^。！？!?]{0,4}?(来た|きた|来まし|届いた|届きまし|とどいた|あった|ありまし|入って(い)?た|入ってまし|大丈夫)"
)
_EN_MISSING_BEFORE = re.compile(
    r"\b(without|no|missing|forgot|forgotten|forget|lacking|minus|left out|where'?s|where is)\s+"
    r"((the|my|any|a|an|their|our|its)\s+)?$"
)
_EN_MISSING_AFTER = re.compile(
    r"^\s*((that|which)\s+)?((is|was|were|are)\s+)?(missing|not (there|included|in (the|my) (bag|box|order))|absent|never (came|arrived)|"
    r"didn'?t (come|arrive|show)|did not (come|arrive)|wasn'?t (there|included|in)|weren'?t)"
)
_EN_ARRIVED_BEFORE = re.compile(r"\b(got|received|have|had|came with)\s+((the|my|a|an)\s+)?$")
_EN_ARRIVED_AFTER = re.compile(r"^\s*((is|was|were|are)\s+)?(came|arrived|here|there|fine|ok|okay)\b")
_ONLY_A_JOIN = re.compile(r"^\s*(,|、|と|や|and|&|\+)?\s*((the|my)\s+)?$")
# "AとBがない" says it of both; "親子丼、別卵がない" only of the egg (a comma is no "and")
_AND = re.compile(r"^\s*(と|や|and|&|\+)\s*((the|my)\s+)?$")


def _claim_spans(said: str, text: str, items: Sequence[ItemView], mentions: Iterable[str]) -> List[Span]:
    """The places that name items: the items' words and the entity mentions."""
    spans = list(_item_spans(text, items))
    for word in mentions:
        # the entity extractor may keep a joining particle ("味噌汁と"): the name is the rest
        folded = re.sub(r"(と|や|、|,)$", "", _fold(str(word)))
        targets = match_items([str(word)], items)
        if len(targets) == 1 and folded:
            spans += [(m.start(), m.end(), (targets[0],)) for m in re.finditer(re.escape(folded), said)]
    return _without_overlaps(spans)


def _without_overlaps(spans: List[Span]) -> List[Span]:
    """Left to right; where places overlap the longest wins (ベツタマゴ, not its たまご),
    then the one naming fewer items."""
    spans = sorted(spans, key=lambda s: (s[0], -(s[1] - s[0]), len(s[2])))
    kept: List[Span] = []
    for span in spans:
        if not kept or span[0] >= kept[-1][1]:
            kept.append(span)
    return kept


def claimed_items(
    text: str, items: Sequence[ItemView], mentions: Iterable[str] = (), said_missing: bool = False
) -> List[ItemView]:
    """Of the order's items a message names, the ones it says are missing; when it only
    says which arrived, the others it names; every named one when it says neither.
    With `said_missing`, only the ones it says are missing."""
    said = _fold(text)
    kept = _claim_spans(said, text, items, [w for w in mentions if w])
    states: List[Optional[str]] = []
    joined_to_next: List[bool] = []
    for n, (start, end, _) in enumerate(kept):
        before = said[kept[n - 1][1] if n else 0 : start]
        after = said[end : kept[n + 1][0] if n + 1 < len(kept) else len(said)]
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
    for (_, _, named_here), state in zip(kept, states):
        for item in named_here:
            if state is not None or item.item_id not in status:  # a later bare mention keeps what was said
                status[item.item_id] = state
    named = [item for item in items if item.item_id in status]
    missing = [i for i in named if status[i.item_id] == "missing"]
    if missing or said_missing:
        return missing
    arrived = {i.item_id for i in named if status[i.item_id] == "arrived"}
    return [i for i in named if i.item_id not in arrived] if arrived else named
