"""Reads and validates bot/audit.yml: the patterns the quality audit looks for.

Product owners edit the file by hand, so every mistake names the file, the line and the
field (`bot/audit.yml:31: bare_cant.words.fr: unknown language ...`), in the house style
of bot/remedy_policy/loader.py, whose node walker this reuses.
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Mapping, Optional, Pattern, Sequence, Tuple

import yaml

from bot.remedy_policy.loader import LANGUAGES, PolicyError, _Reader, compose_yaml
from contracts.vocabulary import REMEDIES, not_fixes

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "audit.yml"
PATH_ENV = "AUDIT_PATTERNS_PATH"
SECTIONS = (
    "coupon_first",
    "bare_cant",
    "asked_again",
    "passed_around",
    "unanswered_question",
    "slow_first_reply",
    "unsatisfied",
)


class AuditPatternsError(ValueError):
    """bot/audit.yml is invalid; the message names the file, the line and the field."""


def normalize(text: str) -> str:
    """How texts and words are compared: full-width folded (NFKC), lower case, curly
    apostrophes straight ("I’m" = "i'm")."""
    return unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'").replace("\u2018", "'")


@dataclass(frozen=True)
class Words:
    """Words per language; a text holds one when any language's word is in it (a case's
    language is not needed: the two languages' words do not collide)."""

    by_language: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)

    def first_in(self, text: str) -> Optional[Tuple[int, str]]:
        """(position, word) of the earliest word in the text, or None."""
        said = normalize(text)
        best: Optional[Tuple[int, str]] = None
        for words in self.by_language.values():
            for word in words:
                found = _find(said, normalize(word))
                if found >= 0 and (best is None or found < best[0]):
                    best = (found, word)
        return best

    def found_in(self, text: str) -> Optional[str]:
        first = self.first_in(text)
        return None if first is None else first[1]

    def starts(self, text: str) -> Optional[str]:
        said = normalize(text).lstrip()
        for words in self.by_language.values():
            for word in words:
                if _find(said, normalize(word)) == 0:
                    return word
        return None


def _find(text: str, word: str) -> int:
    """Where `word` is in `text` (-1: nowhere); an ASCII word only as a whole word."""
    if not word.isascii():
        return text.find(word)
    match = re.search(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])", text)
    return match.start() if match else -1


@dataclass(frozen=True)
class AskedThing:
    """Something the bot or an agent asks for (an order, an item, the problem)."""

    name: str
    responses: Tuple[str, ...] = ()
    asking_words: Words = field(default_factory=Words)
    entities: Tuple[str, ...] = ()
    intents: Tuple[str, ...] = ()
    said_patterns: Tuple[Pattern[str], ...] = ()


@dataclass(frozen=True)
class AuditPatterns:
    coupon_remedies: frozenset
    coupon_words: Words
    fix_words: Words
    cant_words: Words
    next_step_words: Words
    asks: Tuple[AskedThing, ...]
    max_handoffs: int
    max_agents: int
    question_marks: Tuple[str, ...]
    question_starts: Words
    question_words: Words
    generic_responses: Tuple[str, ...]
    ending_responses: Tuple[str, ...]
    sla_minutes: int
    working_hours_only: bool
    satisfaction_responses: Tuple[str, ...]
    satisfied_intents: Tuple[str, ...]


def load_patterns(path: Optional[os.PathLike] = None) -> AuditPatterns:
    """bot/audit.yml (or AUDIT_PATTERNS_PATH, or `path`), validated."""
    chosen = Path(path or os.environ.get(PATH_ENV) or DEFAULT_PATH)
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as error:
        raise AuditPatternsError(f"{chosen}: cannot read the file: {error.strerror}") from error
    return parse_patterns(text, _shown(chosen))


def _shown(path: Path) -> str:
    """The file as errors name it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(DEFAULT_PATH.parent.parent))
    except ValueError:
        return str(path)


def parse_patterns(text: str, source: str = "bot/audit.yml") -> AuditPatterns:
    try:
        root = compose_yaml(text, source)
    except PolicyError as error:
        raise AuditPatternsError(str(error)) from None
    return _PatternsReader(source).patterns(root)


class _PatternsReader(_Reader):
    def fail(self, node: yaml.Node, path: str, message: str) -> AuditPatternsError:  # type: ignore[override]
        return AuditPatternsError(f"{self.source}:{node.start_mark.line + 1}: {path or '(top)'}: {message}")

    def section(self, top: Dict, root: yaml.Node, name: str, allowed: Optional[Tuple[str, ...]]) -> Dict:
        """The entries of a top-level section; `allowed` None: any names (asked_again's)."""
        node = self.required(top, root, "", name)
        entries = self.mapping(node, name)
        if allowed is not None:
            self.no_unknown(entries, name, allowed)
        return entries

    def words(self, node: yaml.Node, path: str, languages: Sequence[str] = LANGUAGES) -> Words:
        entries = self.mapping(node, path)
        self.no_unknown(entries, path, tuple(languages))
        return Words({lang: self.string_list(value, f"{path}.{lang}") for lang, (_, value) in entries.items()})

    def flag(self, node: yaml.Node, path: str) -> bool:
        value = self.scalar(node, path)
        if not isinstance(value, bool):
            raise self.fail(node, path, f"expected true or false, got {value!r}")
        return value

    def patterns(self, root: yaml.Node) -> AuditPatterns:
        top = self.mapping(root, "")
        self.no_unknown(top, "", ("version", *SECTIONS))
        version_node = self.required(top, root, "", "version")
        if self.scalar(version_node, "version") != 1:
            raise self.fail(version_node, "version", "unsupported version (expected 1)")

        coupon = self.section(top, root, "coupon_first", ("remedies", "words", "fix_words"))
        remedies = not_fixes()
        if "remedies" in coupon:
            remedies = frozenset(self.string_list(coupon["remedies"][1], "coupon_first.remedies", tuple(REMEDIES)))
        cant = self.section(top, root, "bare_cant", ("words", "next_step_words"))
        cant_node = top["bare_cant"][1]
        asked = self.section(top, root, "asked_again", None)  # the things' names are the owners'
        if not asked:
            raise self.fail(top["asked_again"][1], "asked_again", "name at least one thing (e.g. order)")
        passed = self.section(top, root, "passed_around", ("max_handoffs", "max_agents"))
        question = self.section(
            top, root, "unanswered_question", ("marks", "starts", "words", "generic_responses", "ending_responses")
        )
        slow = self.section(top, root, "slow_first_reply", ("sla_minutes", "working_hours_only"))
        satisfied = self.section(top, root, "unsatisfied", ("question_responses", "satisfied_intents"))
        return AuditPatterns(
            coupon_remedies=remedies,
            coupon_words=self.optional_words(coupon, "coupon_first.words"),
            fix_words=self.optional_words(coupon, "coupon_first.fix_words"),
            cant_words=self.words(self.required(cant, cant_node, "bare_cant", "words"), "bare_cant.words"),
            next_step_words=self.words(
                self.required(cant, cant_node, "bare_cant", "next_step_words"), "bare_cant.next_step_words"
            ),
            asks=tuple(self.asked_thing(name, value) for name, (_, value) in asked.items()),
            max_handoffs=self.integer(
                self.required(passed, top["passed_around"][1], "passed_around", "max_handoffs"),
                "passed_around.max_handoffs",
                minimum=1,
            ),
            max_agents=self.integer(
                self.required(passed, top["passed_around"][1], "passed_around", "max_agents"),
                "passed_around.max_agents",
                minimum=1,
            ),
            question_marks=self.list_of(question, "unanswered_question", "marks"),
            question_starts=self.optional_words(question, "unanswered_question.starts"),
            question_words=self.optional_words(question, "unanswered_question.words"),
            generic_responses=self.list_of(question, "unanswered_question", "generic_responses"),
            ending_responses=self.list_of(question, "unanswered_question", "ending_responses"),
            sla_minutes=self.integer(
                self.required(slow, top["slow_first_reply"][1], "slow_first_reply", "sla_minutes"),
                "slow_first_reply.sla_minutes",
                minimum=1,
            ),
            working_hours_only=self.flag(slow["working_hours_only"][1], "slow_first_reply.working_hours_only")
            if "working_hours_only" in slow
            else True,
            satisfaction_responses=self.list_of(satisfied, "unsatisfied", "question_responses"),
            satisfied_intents=self.list_of(satisfied, "unsatisfied", "satisfied_intents"),
        )

    def optional_words(self, entries: Dict, path: str) -> Words:
        name = path.rsplit(".", 1)[-1]
        return self.words(entries[name][1], path) if name in entries else Words()

    def list_of(self, entries: Dict, path: str, name: str) -> Tuple[str, ...]:
        return self.string_list(entries[name][1], f"{path}.{name}") if name in entries else ()

    def asked_thing(self, name: str, node: yaml.Node) -> AskedThing:
        path = f"asked_again.{name}"
        entries = self.mapping(node, path)
        self.no_unknown(entries, path, ("responses", "asking_words", "entities", "intents", "said_patterns"))
        if "responses" not in entries and "asking_words" not in entries:
            raise self.fail(node, path, "name how it is asked: `responses`, `asking_words` or both")
        if not {"entities", "intents", "said_patterns"} & set(entries):
            raise self.fail(node, path, "name how the customer says it: `entities`, `intents` or `said_patterns`")
        return AskedThing(
            name=name,
            responses=self.list_of(entries, path, "responses"),
            asking_words=self.optional_words(entries, f"{path}.asking_words"),
            entities=self.list_of(entries, path, "entities"),
            intents=self.list_of(entries, path, "intents"),
            said_patterns=self.regexes(entries["said_patterns"][1], f"{path}.said_patterns")
            if "said_patterns" in entries
            else (),
        )

    def regexes(self, node: yaml.Node, path: str) -> Tuple[Pattern[str], ...]:
        entries = self.mapping(node, path)
        self.no_unknown(entries, path, LANGUAGES)
        compiled = []
        for lang, (_, value) in entries.items():
            if not isinstance(value, yaml.SequenceNode):
                raise self.fail(value, f"{path}.{lang}", "expected a list of patterns")
            for item in value.value:
                pattern = self.scalar(item, f"{path}.{lang}")
                try:
                    compiled.append(re.compile(str(pattern), re.IGNORECASE))
                except re.error as error:
                    raise self.fail(item, f"{path}.{lang}", f"not a valid pattern: {error}") from None
        return tuple(compiled)


__all__ = ["AskedThing", "AuditPatterns", "AuditPatternsError", "Words", "load_patterns", "normalize", "parse_patterns"]
