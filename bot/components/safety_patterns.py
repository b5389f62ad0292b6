"""Safety from the meaning: word groups combined by rules, over the tokenizer's analysis.

The lexicon (`safety:` in bot/safety_lexicon.yml) needs the customer to use one of its words. People
hurt by food mostly do not: 「口の中がざっくり切れた」, "my gum hurts", 「ビニールが入ってた」.
What they say is a *combination* - a body part with a harm word, blood with a flowing verb,
a material that is not food with "in it" - and each half alone is an ordinary word
("the box was cut open", 品切れ, 口コミ, "plastic cutlery"). So product owners list word
groups and rules that need every group of the rule close together in one sentence
(`safety_patterns:` in bot/safety_lexicon.yml, explained there).

Japanese words match MeCab's lemma or the token's text (切れ, 切っ -> 切れる/切る; ケガ and 怪我
fold), so conjugations and kana/kanji spellings need no listing. English has no lemmas:
`word*` matches words starting with it, and a word of five letters or more also matches
with two neighbouring letters swapped ("mouht"), the commonest typo on a phone.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Tuple

import yaml

from bot.components.writing_systems import katakana_to_hiragana, normalize

SECTION = "safety_patterns"
LANGUAGES = ("ja", "en")
# Ends a sentence: a rule's groups must meet inside one (「箱が切れてた。指は無事」 is two).
_SENTENCE_END = set("。.!?！？\n")
# At most this many ways to pick one match per group are tried per rule (long messages).
_MAX_COMBINATIONS = 5000


class PatternError(ValueError):
    """A mistake in the `safety_patterns:` section, with the file and line."""


def fold(text: str) -> str:
    """What patterns compare: NFKC, lower case, katakana as hiragana, straight apostrophes."""
    return katakana_to_hiragana(normalize(text)).replace("\u2019", "'")


@dataclass(frozen=True)
class Word:
    """One tokenizer token, as the patterns see it."""

    forms: FrozenSet[str]  # folded text and lemma
    text: str  # folded text (prefix and typo matching use the written word)
    pos: str  # UniDic part of speech for Japanese, "" otherwise
    start: int
    end: int
    sentence: int


def words_of(text: str, tokens: Sequence[Any]) -> List[Word]:
    """Tokens with their sentence number (a sentence end in the text between two tokens)."""
    words: List[Word] = []
    sentence = 0
    previous_end = 0
    for token in tokens:
        start = int(getattr(token, "start", 0))
        if any(c in _SENTENCE_END for c in text[previous_end:start]):
            sentence += 1
        surface = fold(token.text)
        lemma = getattr(token, "lemma", None)
        forms = {surface} | ({fold(lemma)} if lemma else set())
        pos = (getattr(token, "data", None) or {}).get("mecab_pos", "")
        words.append(Word(frozenset(forms), surface, pos, start, int(getattr(token, "end", start)), sentence))
        previous_end = max(previous_end, int(getattr(token, "end", start)))
    return words


def _transposed(a: str, b: str) -> bool:
    """b is a with two neighbouring letters swapped (mouth/mouht)."""
    if len(a) != len(b) or a == b:
        return False
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]


@dataclass(frozen=True)
class Part:
    key: str
    prefix: bool
    typos: bool

    def matches(self, word: Word) -> bool:
        if self.prefix:
            return any(form.startswith(self.key) for form in word.forms)
        if self.key in word.forms:
            return True
        return self.typos and _transposed(self.key, word.text)


@dataclass(frozen=True)
class Term:
    """A word or a phrase (parts separated by spaces: consecutive tokens; a Japanese
    particle may sit between two parts, so "気分 優れる" also matches 気分が優れない)."""

    written: str
    parts: Tuple[Part, ...]

    def spans(self, words: Sequence[Word]) -> List[Tuple[int, int]]:
        found = []
        for i in range(len(words)):
            j = i
            ok = True
            for n, part in enumerate(self.parts):
                if n and j < len(words) and words[j].pos == "助詞" and not part.matches(words[j]):
                    j += 1  # skip one particle between parts
                if j >= len(words) or not part.matches(words[j]):
                    ok = False
                    break
                j += 1
            if ok:
                found.append((i, j - 1))
        return found


@dataclass(frozen=True)
class Group:
    name: str
    terms: Tuple[Term, ...]
    # A match is void when one of these is among the next two tokens (プラスチックの*フォーク*,
    # "glass *bottle*") or among the two before (見た*目*): the word names something else.
    not_before: Tuple[Part, ...] = ()
    not_after: Tuple[Part, ...] = ()

    def spans(self, words: Sequence[Word]) -> List[Tuple[int, int]]:
        spans = []
        for term in self.terms:
            for start, end in term.spans(words):
                following = words[end + 1 : end + 3]
                preceding = words[max(0, start - 2) : start]
                if any(p.matches(w) for p in self.not_before for w in following):
                    continue
                if any(p.matches(w) for p in self.not_after for w in preceding):
                    continue
                spans.append((start, end))
        return spans


@dataclass(frozen=True)
class Rule:
    name: str
    groups: Tuple[str, ...]
    within: int  # tokens from the first group's match to the last's
    in_order: bool
    not_negated: bool  # 「入ってなかった」, "no plastic ... in" is a missing item, not a hazard
    line: int


@dataclass(frozen=True)
class LanguagePatterns:
    groups: Dict[str, Group]
    rules: Tuple[Rule, ...]
    negators_after: Tuple[Part, ...] = ()  # ja: ない, ず after the last match
    negators_before: Tuple[Part, ...] = ()  # en: no, not, without before the first
    # Right after a match: a figure of speech (「胃が痛くなる*ほど*待った」), not a symptom.
    figurative_after: Tuple[Part, ...] = ()

    def matches(self, text: str, words: Sequence[Word]) -> List[str]:
        spans = {name: group.spans(words) for name, group in self.groups.items()}
        found = []
        for rule in self.rules:
            hit = self._first_hit(rule, spans, words)
            if hit is not None:
                start, end = hit
                found.append(f"pattern:{rule.name}: {text[words[start].start : words[end].end]}")
        return found

    def _first_hit(
        self, rule: Rule, spans: Dict[str, List[Tuple[int, int]]], words: Sequence[Word]
    ) -> Optional[Tuple[int, int]]:
        choices = [spans[g] for g in rule.groups]
        if not all(choices):
            return None
        for combo in itertools.islice(itertools.product(*choices), _MAX_COMBINATIONS):
            first = min(s for s, _ in combo)
            last = max(e for _, e in combo)
            if words[first].sentence != words[last].sentence or last - first > rule.within:
                continue
            if rule.in_order and any(a[0] > b[0] for a, b in zip(combo, combo[1:])):
                continue
            # Overlapping matches are one word doing two jobs, not two words.
            if len(combo) > 1 and len({s for s, _ in combo}) < len(combo):
                continue
            after = words[last + 1 : last + 4]
            if any(p.matches(w) for p in self.figurative_after for w in after):
                continue
            if rule.not_negated and (
                any(p.matches(w) for p in self.negators_after for w in after)
                or any(p.matches(w) for p in self.negators_before for w in words[max(0, first - 2) : first])
            ):
                continue
            return first, last
        return None


@dataclass(frozen=True)
class SafetyPatterns:
    languages: Dict[str, LanguagePatterns] = field(default_factory=dict)

    def matches(self, text: str, tokens: Sequence[Any]) -> List[str]:
        """`pattern:<rule>: <the words it matched>` for each rule that matched."""
        words = words_of(text, tokens)
        found: List[str] = []
        for patterns in self.languages.values():
            found += patterns.matches(text, words)
        return found


# --- Loading: every mistake names the file and line -------------------------------------
def _part(word: str, language: str) -> Part:
    key = fold(word)
    prefix = key.endswith("*")
    key = key.rstrip("*")
    return Part(key, prefix, typos=language == "en" and not prefix and len(key) >= 5 and key.isalpha())


def _words(node: Any, where: str, path: Path) -> List[Tuple[str, int]]:
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        line = node.start_mark.line + 1 if node is not None else 1
        raise PatternError(f"{path}:{line}: {where}: expected a non-empty list of words")
    words = []
    for item in node.value:
        value = str(item.value).strip() if isinstance(item, yaml.ScalarNode) else ""
        if not value or value.rstrip("*") == "" or "*" in value.rstrip("*"):
            raise PatternError(
                f"{path}:{item.start_mark.line + 1}: {where}: each entry must be a word or phrase "
                "(a '*' only at the end)"
            )
        words.append((value, item.start_mark.line + 1))
    return words


def _mapping(node: Any, where: str, path: Path, line: int) -> Dict[str, Tuple[Any, int]]:
    if not isinstance(node, yaml.MappingNode):
        raise PatternError(f"{path}:{line}: {where}: expected a mapping")
    return {key.value: (value, key.start_mark.line + 1) for key, value in node.value}


def _expect_keys(found: Dict[str, Tuple[Any, int]], allowed: Sequence[str], where: str, path: Path) -> None:
    for key, (_, line) in found.items():
        if key not in allowed:
            raise PatternError(f"{path}:{line}: {where}.{key}: unknown key; use {', '.join(allowed)}")


def _int(node: Any, where: str, path: Path, line: int) -> int:
    try:
        value = int(node.value)
    except (AttributeError, TypeError, ValueError):
        value = 0
    if not isinstance(node, yaml.ScalarNode) or value < 0 or value > 30:
        raise PatternError(f"{path}:{line}: {where}: expected a number of tokens from 0 to 30")
    return value


def _bool(node: Any, where: str, path: Path, line: int) -> bool:
    value = str(getattr(node, "value", "")).lower()
    if value not in ("true", "false"):
        raise PatternError(f"{path}:{line}: {where}: expected true or false")
    return value == "true"


def _language(node: Any, language: str, path: Path, line: int) -> LanguagePatterns:
    where = f"{SECTION}.{language}"
    keys = _mapping(node, where, path, line)
    _expect_keys(keys, ("groups", "rules", "negators_after", "negators_before", "figurative_after"), where, path)
    if "groups" not in keys or "rules" not in keys:
        raise PatternError(f"{path}:{line}: {where}: needs 'groups:' and 'rules:'")

    def parts(key: str) -> Tuple[Part, ...]:
        if key not in keys:
            return ()
        return tuple(_part(w, language) for w, _ in _words(keys[key][0], f"{where}.{key}", path))

    groups: Dict[str, Group] = {}
    group_node, group_line = keys["groups"]
    for name, (value, name_line) in _mapping(group_node, f"{where}.groups", path, group_line).items():
        gw = f"{where}.groups.{name}"
        entries = (
            _mapping(value, gw, path, name_line)
            if isinstance(value, yaml.MappingNode)
            else {"words": (value, name_line)}
        )
        _expect_keys(entries, ("words", "not_before", "not_after"), gw, path)
        if "words" not in entries:
            raise PatternError(f"{path}:{name_line}: {gw}: needs 'words:'")
        terms = tuple(
            Term(w, tuple(_part(p, language) for p in w.split()))
            for w, _ in _words(entries["words"][0], f"{gw}.words", path)
        )
        extra = {
            k: tuple(_part(w, language) for w, _ in _words(entries[k][0], f"{gw}.{k}", path))
            for k in ("not_before", "not_after")
            if k in entries
        }
        groups[name] = Group(name, terms, **extra)

    rules: List[Rule] = []
    rule_node, rule_line = keys["rules"]
    if not isinstance(rule_node, yaml.SequenceNode) or not rule_node.value:
        raise PatternError(f"{path}:{rule_line}: {where}.rules: expected a list of rules")
    for item in rule_node.value:
        item_line = item.start_mark.line + 1
        fields = _mapping(item, f"{where}.rules", path, item_line)
        _expect_keys(fields, ("name", "all", "within", "in_order", "not_negated"), f"{where}.rules", path)
        if "name" not in fields or "all" not in fields:
            raise PatternError(f"{path}:{item_line}: {where}.rules: each rule needs 'name:' and 'all:'")
        name = str(fields["name"][0].value)
        rw = f"{where}.rules.{name}"
        needed = []
        for group, group_at in _words(fields["all"][0], f"{rw}.all", path):
            if group not in groups:
                raise PatternError(f"{path}:{group_at}: {rw}.all: no group named '{group}' in {where}.groups")
            needed.append(group)
        rules.append(
            Rule(
                name=name,
                groups=tuple(needed),
                within=_int(fields["within"][0], f"{rw}.within", path, fields["within"][1])
                if "within" in fields
                else 6,
                in_order=_bool(fields["in_order"][0], f"{rw}.in_order", path, fields["in_order"][1])
                if "in_order" in fields
                else False,
                not_negated=_bool(fields["not_negated"][0], f"{rw}.not_negated", path, fields["not_negated"][1])
                if "not_negated" in fields
                else False,
                line=item_line,
            )
        )
    return LanguagePatterns(
        groups, tuple(rules), parts("negators_after"), parts("negators_before"), parts("figurative_after")
    )


def load_patterns(path: Path) -> SafetyPatterns:
    """Reads `safety_patterns:` from safety_lexicon.yml; a file without the section has no patterns."""
    with open(path, encoding="utf-8") as handle:
        root = yaml.compose(handle)
    if not isinstance(root, yaml.MappingNode):
        raise PatternError(f"{path}:1: expected a mapping")
    section = {key.value: (value, key.start_mark.line + 1) for key, value in root.value}.get(SECTION)
    if section is None:
        return SafetyPatterns()
    node, line = section
    languages = {}
    for language, (value, language_line) in _mapping(node, SECTION, path, line).items():
        if language not in LANGUAGES:
            raise PatternError(f"{path}:{language_line}: {SECTION}.{language}: unknown language; use ja or en")
        languages[language] = _language(value, language, path, language_line)
    return SafetyPatterns(languages)
