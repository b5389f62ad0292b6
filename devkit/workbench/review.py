"""The review queue (`make review`'s CSV), labelling a row into the training data through
scripts/import_review.py, and the last evaluation's summary (a little Markdown).

The scripts run in the bot's environment as subprocesses: this process never imports
Rasa and never writes bot/data/ itself.
"""

from __future__ import annotations

import asyncio
import csv
import html
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import yaml

from contracts.review import REVIEW_COLUMNS

QUEUE_COLUMNS = REVIEW_COLUMNS
# Intents no customer types: the gateway triggers them (domain.yml says so).
NOT_LABELS = ("relayed_to_agent",)


@dataclass
class RunResult:
    """A finished script: the command line as shown to the user, exit code, output."""

    command: str
    code: int
    output: str

    @property
    def ok(self) -> bool:
        return self.code == 0


def read_queue(path: Path) -> Optional[List[Dict[str, str]]]:
    """The queue's rows (None when the file does not exist)."""
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8-sig") as f:  # review.py writes a BOM
        return [{k: (v or "") for k, v in row.items() if k} for row in csv.DictReader(f)]


def domain_intents(domain_path: Path) -> List[str]:
    """The intents a message can be labelled with, in domain.yml's order."""
    data = yaml.safe_load(domain_path.read_text(encoding="utf-8")) or {}
    names = []
    for entry in data.get("intents") or []:
        name = next(iter(entry)) if isinstance(entry, dict) else str(entry)
        if name.startswith("EXTERNAL_") or name in NOT_LABELS:
            continue
        names.append(name)
    return names


def write_one_row(row: Dict[str, str], correct_intent: str, folder: Optional[Path] = None) -> Path:
    """A CSV with the queue's header and this one row, labelled; for import_review.py."""
    fd, name = tempfile.mkstemp(prefix="review-row-", suffix=".csv", dir=folder)
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(QUEUE_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        writer.writerow({**{c: row.get(c, "") for c in QUEUE_COLUMNS}, "correct_intent": correct_intent})
    return Path(name)


async def run_script(python: Path, script: Path, args: Sequence[str], cwd: Path, timeout_s: float = 900.0) -> RunResult:
    """Run a project script and keep its output (stdout and stderr together). A missing
    interpreter or script is reported as such, not as a traceback."""
    shown = " ".join([_rel(python, cwd), _rel(script, cwd), *args])
    if not python.exists():
        return RunResult(shown, 127, f"{python} does not exist: install the bot's environment (make install).")
    if not script.is_file():
        return RunResult(shown, 127, f"{_rel(script, cwd)} does not exist (yet): nothing was run.")
    proc = await asyncio.create_subprocess_exec(
        str(python),
        *_script_args(script, cwd),
        *args,
        cwd=str(cwd),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return RunResult(shown, -1, f"stopped after {timeout_s:.0f} s")
    return RunResult(shown, proc.returncode or 0, out.decode("utf-8", "replace"))


def _script_args(script: Path, root: Path) -> List[str]:
    """A project script runs as a module from the root (`-m scripts.review`: it imports
    `scripts.*` beside the installed packages); any other file by its path."""
    try:
        module = script.resolve().relative_to(root.resolve()).with_suffix("")
    except ValueError:
        return [str(script)]
    return ["-m", ".".join(module.parts)]


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


# --- Markdown, just enough for summary.md: headings, tables, lists, code, paragraphs -------


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<![\w*])\*([^*\s][^*]*)\*(?!\w)", r"<em>\1</em>", out)
    return out


def _cells(line: str) -> List[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def markdown_to_html(text: str) -> str:
    lines = text.splitlines()
    out: List[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
        elif stripped.startswith("```"):
            block = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                block.append(lines[i])
                i += 1
            i += 1
            out.append("<pre><code>" + html.escape("\n".join(block)) + "</code></pre>")
        elif re.match(r"#{1,6} ", stripped):
            level = min(len(stripped) - len(stripped.lstrip("#")) + 1, 6)  # page has the h1
            out.append(f"<h{level}>{_inline(stripped.lstrip('#').strip())}</h{level}>")
            i += 1
        elif (
            stripped.startswith("|")
            and i + 1 < len(lines)
            and re.match(r"^\s*\|?[\s:|-]+\|?\s*$", lines[i + 1])
            and "-" in lines[i + 1]
        ):
            head = _cells(stripped)
            rows = []
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            thead = "".join(f'<th scope="col">{_inline(c)}</th>' for c in head)
            tbody = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rows)
            out.append(f'<table class="md"><thead><tr>{thead}</tr></thead><tbody>{tbody}</tbody></table>')
        elif re.match(r"([-*+]|\d+[.)]) ", stripped):
            ordered = bool(re.match(r"\d", stripped))
            items = []
            while i < len(lines) and re.match(r"\s*([-*+]|\d+[.)]) ", lines[i]):
                items.append(re.sub(r"^\s*([-*+]|\d+[.)]) ", "", lines[i]))
                i += 1
            tag = "ol" if ordered else "ul"
            out.append(f"<{tag}>" + "".join(f"<li>{_inline(x)}</li>" for x in items) + f"</{tag}>")
        else:
            para = []
            while (
                i < len(lines) and lines[i].strip() and not re.match(r"\s*(#{1,6} |```|\||[-*+] |\d+[.)] )", lines[i])
            ):
                para.append(lines[i].strip())
                i += 1
            if not para:  # a line no rule above took (e.g. a lone "|"): keep it as text
                para, i = [stripped], i + 1
            out.append("<p>" + _inline(" ".join(para)) + "</p>")
    return "\n".join(out)


__all__ = [
    "QUEUE_COLUMNS",
    "RunResult",
    "domain_intents",
    "markdown_to_html",
    "read_queue",
    "run_script",
    "write_one_row",
]
