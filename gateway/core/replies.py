"""The reply book (gateway/agent_replies.yml): checks on an agent's reply before it reaches
the customer, and suggested replies (drafts) for the usual next steps.

Product owners edit the YAML by hand, so every mistake is reported with the file and the
line (`gateway/agent_replies.yml:42: drafts[3].text.ja: ...`) and the gateway refuses to
start on a broken book.

- `ReplyBook.check(text, language)`: does the reply hurt the customer? A blame shift
  ("当事者間で解決してください", "not our responsibility") is flagged always; a bare refusal
  ("できません", "we can't") only when the reply offers no next step ("代わりに", "返金",
  "we will", ...). The answer names what was found and the key of a better draft.
- `ReplyBook.drafts()` / `ReplyBook.draft(key)` / `Draft.render(language, values)`: the
  suggested replies, rendered in the customer's language; a placeholder without a value
  renders as a blank for the agent to fill in ("〇〇" / "___"), never an error.

Text is normalised before matching (NFKC: full-width and half-width forms, lower case,
katakana as hiragana, one kind of apostrophe, spaces collapsed), patterns the same way.
Plain module: no Slack, no Redis.
"""

from __future__ import annotations

import hashlib
import os
import re
import string
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml

from contracts.case_context import CaseContext
from gateway.yaml_source import NodeReader, compose

DEFAULT_REPLIES_PATH = Path(__file__).resolve().parent.parent / "agent_replies.yml"
ENV_VAR = "AGENT_REPLIES_PATH"
LANGUAGES = ("ja", "en")
KINDS = ("bare_refusal", "blame_shift")
# The placeholders a draft may use; the gateway fills what it knows from the case.
PLACEHOLDERS = ("customer", "agent", "remedy", "order", "callback_time", "case_id", "shop", "eta", "amount")
# What a placeholder without a value renders as: a visible blank the agent fills in.
BLANKS = {"ja": "〇〇", "en": "___"}


class ReplyBookError(ValueError):
    """The reply book is invalid; the message names the file, line and field."""


# --- normalising ---------------------------------------------------------------------------
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'"})
_SPACES = re.compile(r"\s+")
# Clause breaks: a refusal's object sits in its clause ("返金はできません", "we cannot refund
# this"), so a next-step word there does not count as a next step.
_CLAUSE_BREAK = re.compile(r"[。、．，！？!?.,;:：；\n]|\b(?:but|however|instead|so)\b|ので|けれど|けど")


def _hiragana(text: str) -> str:
    # ァ..ヶ (U+30A1..U+30F6) -> ぁ..ゖ; ー and ・ stay.
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in text)


def normalise(text: str) -> str:
    """The form text and patterns are compared in."""
    text = unicodedata.normalize("NFKC", text or "").translate(_APOSTROPHES)
    text = _hiragana(text.casefold())
    return _SPACES.sub(" ", text).strip()


def text_digest(text: str) -> str:
    """A short hash of the normalised text (the same reply, however it is spaced or typed)."""
    return hashlib.sha256(_SPACES.sub("", normalise(text)).encode("utf-8")).hexdigest()[:16]


def _ascii_word(pattern: str) -> bool:
    return bool(pattern) and pattern[0].isascii() and pattern[0].isalnum()


@dataclass(frozen=True)
class _Pattern:
    text: str  # as written in the book
    regex: "re.Pattern[str]"

    @classmethod
    def of(cls, text: str) -> "_Pattern":
        norm = normalise(text)
        if _ascii_word(norm):
            # at the start of a word: "refund" in "refunded", never "can" in "pecan"
            return cls(text, re.compile(r"(?<![a-z0-9'])" + re.escape(norm).replace(r"\ ", r"\s+")))
        # Japanese has no spaces between words: one typed in by mistake is skipped.
        return cls(text, re.compile(r"\s?".join(re.escape(c) for c in norm if not c.isspace())))


# --- the book ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReplyFinding:
    kind: str  # "bare_refusal" | "blame_shift"
    matched: Tuple[str, ...]  # the book's words found in the reply, as the book writes them
    warning: str  # for the agent, the customer's language first, then the other(s)
    better_draft: str  # key of a draft (ReplyBook.draft)
    check: str = ""  # the check's key
    warnings: Mapping[str, str] = field(default_factory=dict)  # per language


@dataclass(frozen=True)
class Draft:
    key: str
    label: Mapping[str, str]  # {"ja": ..., "en": ...}: the button / menu text
    text: Mapping[str, str]  # {"ja": ..., "en": ...}, with {placeholders}

    @property
    def placeholders(self) -> Tuple[str, ...]:
        seen: List[str] = []
        for body in self.text.values():
            for _, name, _, _ in string.Formatter().parse(body):
                if name and name not in seen:
                    seen.append(name)
        return tuple(seen)

    def label_in(self, language: Optional[str]) -> str:
        return self.label.get(_language(language, self.label)) or ""

    def render(self, language: Optional[str], values: Optional[Mapping[str, Any]] = None) -> str:
        """The draft in `language` (the book's first language when it has none in it),
        `values` filled in; a missing or empty value renders as a blank ("〇〇", "___")."""
        lang = _language(language, self.text)
        blank = BLANKS.get(lang, "___")
        given = {k: str(v) for k, v in (values or {}).items() if v not in (None, "")}
        return self.text[lang].format_map(_Blanks(given, blank))


class _Blanks(dict):
    def __init__(self, values: Mapping[str, str], blank: str) -> None:
        super().__init__(values)
        self.blank = blank

    def __missing__(self, key: str) -> str:
        return self.blank


def _language(language: Optional[str], texts: Mapping[str, str]) -> str:
    lang = (language or "").lower().split("-")[0].split("_")[0]
    if lang in texts:
        return lang
    return "ja" if "ja" in texts else next(iter(texts))


@dataclass(frozen=True)
class Check:
    key: str
    kind: str
    patterns: Tuple[_Pattern, ...]
    warning: Mapping[str, str]
    better_draft: str


@dataclass(frozen=True)
class ReplyBook:
    checks_: Tuple[Check, ...]
    next_steps: Tuple[_Pattern, ...]
    drafts_: Tuple[Draft, ...]
    source: str = "gateway/agent_replies.yml"

    def drafts(self) -> List[Draft]:
        """The suggested replies, in the book's order."""
        return list(self.drafts_)

    def draft(self, key: str) -> Optional[Draft]:
        return next((d for d in self.drafts_ if d.key == key), None)

    def check(self, text: str, language: Optional[str] = "ja") -> Optional[ReplyFinding]:
        """What would hurt the customer in `text`, or None. Every language's patterns are
        tried (agents mix languages); `language` (the customer's) orders the warning. The
        checks are tried in the book's order; the first that flags wins."""
        norm = normalise(text)
        if not norm:
            return None
        for check in self.checks_:
            hits = [(p, m) for p in check.patterns for m in p.regex.finditer(norm)]
            if not hits:
                continue
            if check.kind == "bare_refusal" and self._has_next_step(norm, [m for _, m in hits]):
                continue
            matched = tuple(dict.fromkeys(p.text for p, _ in hits))
            return ReplyFinding(
                kind=check.kind,
                matched=matched,
                warning=_both(check.warning, language),
                better_draft=check.better_draft,
                check=check.key,
                warnings=dict(check.warning),
            )
        return None

    def _has_next_step(self, norm: str, refusals: List["re.Match[str]"]) -> bool:
        """A next-step word outside the refusals' own clauses: in Japanese the object comes
        before the verb (「返金はできません」), in English after ("we cannot refund this")."""
        masked = list(norm)
        for m in refusals:
            if _ascii_word(m.group(0)):
                nxt = _CLAUSE_BREAK.search(norm, m.end())
                start, end = m.start(), nxt.start() if nxt else len(norm)
            else:
                starts = [b.end() for b in _CLAUSE_BREAK.finditer(norm, 0, m.start())]
                start, end = (starts[-1] if starts else 0), m.end()
            masked[start:end] = " " * (end - start)
        rest = "".join(masked)
        return any(p.regex.search(rest) for p in self.next_steps)


def _both(texts: Mapping[str, str], language: Optional[str]) -> str:
    first = _language(language, texts)
    return "\n".join([texts[first]] + [t for lang, t in texts.items() if lang != first])


# --- for a case ----------------------------------------------------------------------------
KIND_LABELS = {
    "bare_refusal": "A bare refusal / 代案のないお断り",
    "blame_shift": "Pushing the problem elsewhere / 責任の押し付け",
}


def customer_language(context: Optional[Mapping[str, Any]]) -> str:
    """The customer's language, from a case context (contracts.case_context); "ja" by default."""
    customer = (context or {}).get("customer")
    language = customer.get("language") if isinstance(customer, Mapping) else None
    return language if isinstance(language, str) and language else "ja"


def case_values(context: Optional[Mapping[str, Any]], agent_name: str = "") -> Dict[str, str]:
    """What a case context tells about a draft's placeholders (the rest render as blanks)."""
    ctx = CaseContext.from_dict(context or {})
    values = {
        "customer": ctx.customer.display_name or "",
        "agent": agent_name,
        "order": ctx.order.number if ctx.order else "",
        "shop": (ctx.order.shop or "") if ctx.order else "",
        "case_id": ctx.case_id,
    }
    return {k: v for k, v in values.items() if v}


def warning_message(book: ReplyBook, finding: ReplyFinding, language: str, values: Mapping[str, Any]) -> str:
    """What the agent alone is shown when a reply was held back: what was found, why, the
    better draft in the customer's language, and how to send the reply unchanged."""
    words = "、".join(f"「{w}」" for w in finding.matched)
    lines = [
        f"✋ Not sent yet / まだ送信していません. {KIND_LABELS.get(finding.kind, finding.kind)}: {words}",
        finding.warning,
    ]
    draft = book.draft(finding.better_draft)
    if draft is not None:
        lines += [
            "",
            f"💡 A better draft / おすすめの文面 ({draft.label['en']} / {draft.label['ja']}):",
            draft.render(language, values),
        ]
    lines += [
        "",
        "Send it again to send it unchanged. / 同じ文面をもう一度送信すると、そのまま送信されます。",
    ]
    return "\n".join(lines)


# --- loading -------------------------------------------------------------------------------
def load_reply_book(path: Optional[os.PathLike] = None) -> ReplyBook:
    """The book from `path`, `$AGENT_REPLIES_PATH` or gateway/agent_replies.yml."""
    chosen = Path(path or os.environ.get(ENV_VAR) or DEFAULT_REPLIES_PATH)
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as error:
        raise ReplyBookError(f"{chosen}: cannot read the reply book: {error.strerror}") from error
    return parse_reply_book(text, str(chosen))


def parse_reply_book(text: str, source: str = "agent_replies.yml") -> ReplyBook:
    return _Reader(source).book(compose(text, source, ReplyBookError))


class _Reader(NodeReader):
    """The reply book's checks, on top of the shared walking (gateway/yaml_source.py)."""

    error = ReplyBookError

    def sequence(self, node: yaml.Node, path: str) -> List[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            raise self.fail(node, path, "expected a non-empty list (lines starting with `- `)")
        return list(node.value)

    def bilingual(self, node: yaml.Node, path: str) -> Dict[str, str]:
        entries = self.mapping(node, path, LANGUAGES)
        return {lang: self.text(entries[lang][1], f"{path}.{lang}") for lang in LANGUAGES}

    def patterns(self, node: yaml.Node, path: str) -> Tuple[_Pattern, ...]:
        entries = self.mapping(node, path, LANGUAGES)
        found: List[_Pattern] = []
        for lang in LANGUAGES:
            for item in self.sequence(entries[lang][1], f"{path}.{lang}"):
                found.append(_Pattern.of(self.text(item, f"{path}.{lang}")))
        return tuple(found)

    def template(self, node: yaml.Node, path: str) -> str:
        body = self.text(node, path)
        try:
            names = [name for _, name, spec, conv in string.Formatter().parse(body) if name is not None]
            specs = [(spec, conv) for _, name, spec, conv in string.Formatter().parse(body) if name is not None]
        except ValueError as error:
            raise self.fail(node, path, f"{error} (write a literal brace as {{{{ or }}}})") from error
        for name, (spec, conv) in zip(names, specs):
            if name not in PLACEHOLDERS:
                raise self.fail(
                    node, path, f"unknown placeholder {{{name}}} (expected one of: {', '.join(PLACEHOLDERS)})"
                )
            if spec or conv:
                raise self.fail(node, path, f"placeholder {{{name}}}: write it plain, without ! or :")
        return body

    def book(self, root: yaml.Node) -> ReplyBook:
        top = self.mapping(root, "", ("version", "checks", "next_steps", "drafts"))
        version_node = top["version"][1]
        if not isinstance(version_node, yaml.ScalarNode) or version_node.value != "1":
            raise self.fail(version_node, "version", f"unsupported version {version_node.value!r} (expected 1)")
        drafts: List[Draft] = []
        for i, node in enumerate(self.sequence(top["drafts"][1], "drafts")):
            path = f"drafts[{i}]"
            entries = self.mapping(node, path, ("key", "label", "text"))
            key = self.text(entries["key"][1], f"{path}.key")
            if any(d.key == key for d in drafts):
                raise self.fail(entries["key"][1], f"{path}.key", f"draft `{key}` appears twice")
            text_entries = self.mapping(entries["text"][1], f"{path}.text", LANGUAGES)
            text = {lang: self.template(text_entries[lang][1], f"{path}.text.{lang}") for lang in LANGUAGES}
            drafts.append(Draft(key, self.bilingual(entries["label"][1], f"{path}.label"), text))
        keys = [d.key for d in drafts]
        checks: List[Check] = []
        for i, node in enumerate(self.sequence(top["checks"][1], "checks")):
            path = f"checks[{i}]"
            entries = self.mapping(node, path, ("key", "kind", "patterns", "warning", "better_draft"))
            kind = self.text(entries["kind"][1], f"{path}.kind")
            if kind not in KINDS:
                raise self.fail(
                    entries["kind"][1], f"{path}.kind", f"unknown kind {kind!r} (expected one of: {', '.join(KINDS)})"
                )
            better = self.text(entries["better_draft"][1], f"{path}.better_draft")
            if better not in keys:
                raise self.fail(entries["better_draft"][1], f"{path}.better_draft", f"no draft `{better}` in `drafts:`")
            checks.append(
                Check(
                    key=self.text(entries["key"][1], f"{path}.key"),
                    kind=kind,
                    patterns=self.patterns(entries["patterns"][1], f"{path}.patterns"),
                    warning=self.bilingual(entries["warning"][1], f"{path}.warning"),
                    better_draft=better,
                )
            )
        return ReplyBook(
            checks_=tuple(checks),
            next_steps=self.patterns(top["next_steps"][1], "next_steps"),
            drafts_=tuple(drafts),
            source=self.source,
        )


__all__ = [
    "DEFAULT_REPLIES_PATH",
    "Draft",
    "case_values",
    "customer_language",
    "warning_message",
    "PLACEHOLDERS",
    "ReplyBook",
    "ReplyBookError",
    "ReplyFinding",
    "load_reply_book",
    "normalise",
    "parse_reply_book",
    "text_digest",
]
