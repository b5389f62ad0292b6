"""Reading the YAML files product owners edit in the gateway (gateway/agent_replies.yml,
gateway/rich_menu.yml) so that every mistake is reported with the file and the line.

Each file's reader subclasses `NodeReader` with its own error type and its own checks;
the walking of mappings and scalars, and the "file:line: field: message" form, are here
once. (The bot's bot/remedy_policy/loader.py does the same in the bot's environment, which
shares no module with the gateway but contracts/.)
"""

from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple, Type

import yaml

Entries = Dict[str, Tuple[yaml.Node, yaml.Node]]


def compose(text: str, source: str, error: Type[Exception]) -> yaml.Node:
    """The file's node tree (nodes keep their line); `error` for invalid YAML or no content."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise error(f"{source}:{mark.line + 1 if mark else 1}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if root is None:
        raise error(f"{source}:1: the file is empty")
    return root


class NodeReader:
    """Walks a node tree; `fail` makes the "file:line: field: message" error."""

    error: Type[Exception] = ValueError

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: yaml.Node, path: str, message: str) -> Exception:
        return self.error(f"{self.source}:{node.start_mark.line + 1}: {path or '(top)'}: {message}")

    def mapping(
        self,
        node: yaml.Node,
        path: str,
        required: Sequence[str],
        optional: Sequence[str] = (),
        any_key: bool = False,
    ) -> Entries:
        """The mapping's entries by name (key node, value node): every `required` name
        present, no other name than `optional` ones unless `any_key`, none twice."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, path, "expected a mapping (key: value lines)")
        known = tuple(required) + tuple(optional)
        entries: Entries = {}
        for key, value in node.value:
            name = str(key.value)
            where = f"{path}.{name}" if path else name
            if name in entries:
                raise self.fail(key, where, "appears twice")
            if name not in known and not any_key:
                raise self.fail(key, where, f"unknown field (expected one of: {', '.join(known)})")
            entries[name] = (key, value)
        for name in required:
            if name not in entries:
                raise self.fail(node, path, f"missing `{name}`")
        return entries

    def scalar(self, node: yaml.Node, path: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, path, "expected a single value")
        return yaml.safe_load(yaml.serialize(node))

    def text(self, node: yaml.Node, path: str) -> str:
        """A non-empty text, stripped."""
        value = self.scalar(node, path)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(node, path, f"expected a non-empty text, got {value!r}")
        return value.strip()


__all__ = ["Entries", "NodeReader", "compose"]
