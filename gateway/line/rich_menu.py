"""The LINE rich menu, from gateway/rich_menu.yml: checked, drawn, published.

    python -m gateway.line.rich_menu render --out DIR   # DIR/<lang>.png and DIR/<lang>.json
    python -m gateway.line.rich_menu apply              # publish to the channel
    (make rich-menu-preview, make rich-menu; --config PATH for another file)

Loading (`load_config`): the YAML is read node by node (yaml.compose) so that every
mistake names the file and the line: unknown fields, a size LINE does not take (2500x1686
or 2500x843), chatBarText over 14 characters, areas outside the image or more than 20,
labels missing for a language, an action label over 20, postback data not in the
gateway's allowlist of unsigned postbacks (customer_input.DEFAULT_PLAIN_POSTBACKS, or
POSTBACK_PLAIN_PAYLOADS as the gateway reads it: a rich menu cannot sign its taps),
postback data or displayText over 300, a uri that is not http(s), colours not #RRGGBB.

Drawing (`render_image`): one PNG per language with Pillow, at the menu's exact size and at
most 1 MB, the labels in a Japanese font: Debian's fonts-ipafont-gothic
(/usr/share/fonts/opentype/ipafont-gothic/ipagp.ttf), else any font fontconfig knows for
Japanese, else RICH_MENU_FONT; none -> FontMissing naming the apt package.

The rich menu object (`menu_object`) is exactly the Messaging API's: size, selected, name
(<= 300), chatBarText (<= 14), areas (<= 20) of bounds and action.

Publishing (`apply`), against the Messaging API with the gateway's LineApi:
  1. each language's menu is named `order-support:<lang>:<hash>`, the hash being that of the
     whole YAML's content (and of the drawing code's version): a menu of that name already
     there is kept (and given its image if an earlier run stopped before the upload);
     otherwise it is validated (POST /v2/bot/richmenu/validate), created (POST
     /v2/bot/richmenu) and its image uploaded (POST api-data.line.me/v2/bot/richmenu/{id}/content);
  2. the default language's menu becomes the account's default (POST
     /v2/bot/user/all/richmenu/{id}), unless it is already;
  3. the menus named `order-support:...` that are not the current ones are deleted (GET
     /v2/bot/richmenu/list, DELETE /v2/bot/richmenu/{id}); others' menus are left alone.
So a second run with the same YAML changes nothing, and a changed YAML replaces the menus
with no moment without one. The per-language menus are linked to customers by the gateway
(rich_menu_links.py).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from gateway.customer_input import DEFAULT_PLAIN_POSTBACKS, check_plain_postbacks
from gateway.line.api import DEFAULT_API_BASE, DEFAULT_DATA_API_BASE, LineApi, LineApiError, RichMenuRefused
from gateway.line.rich_menu_links import MENU_PREFIX, menu_name, parse_menu_name
from gateway.yaml_source import NodeReader, compose

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "rich_menu.yml"
# Bump when the drawing changes, so that `apply` publishes new images for the same YAML.
RENDER_VERSION = 1
SIZES = ((2500, 1686), (2500, 843))  # what LINE takes for a rich menu image
MAX_AREAS = 20
MAX_CHAT_BAR_TEXT = 14
MAX_NAME = 300
MAX_ACTION_LABEL = 20
MAX_DATA = 300
MAX_DISPLAY_TEXT = 300
MAX_URI = 1000
MAX_IMAGE_BYTES = 1024 * 1024
IPA_GOTHIC = Path("/usr/share/fonts/opentype/ipafont-gothic/ipagp.ttf")
FONT_PACKAGE = "fonts-ipafont-gothic"
_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")
_STYLE_KEYS = ("background", "text_color", "border_color", "border_width", "font_size")


class RichMenuConfigError(ValueError):
    """The YAML is invalid; the message names the file, the line and the field."""


class FontMissing(RuntimeError):
    """No Japanese font to draw the labels with."""


# --- the configuration -------------------------------------------------------------------------
@dataclass(frozen=True)
class Bounds:
    x: int
    y: int
    width: int
    height: int

    def to_json(self) -> Dict[str, int]:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}


@dataclass(frozen=True)
class Action:
    type: str  # postback | uri | message
    data: str = ""  # postback
    uri: str = ""  # uri
    display_text: Dict[str, str] = field(default_factory=dict)  # postback, per language
    text: Dict[str, str] = field(default_factory=dict)  # message, per language
    label: Dict[str, str] = field(default_factory=dict)  # per language (screen readers)


@dataclass(frozen=True)
class Area:
    label: Dict[str, str]
    bounds: Bounds
    action: Action
    background: str
    text_color: str
    font_size: int


@dataclass(frozen=True)
class RichMenuConfig:
    source: str
    width: int
    height: int
    selected: bool
    default_language: str
    chat_bar_text: Dict[str, str]
    areas: Tuple[Area, ...]
    border_color: str
    border_width: int
    content_hash: str

    @property
    def languages(self) -> Tuple[str, ...]:
        others = sorted(lang for lang in self.chat_bar_text if lang != self.default_language)
        return (self.default_language, *others)

    def name(self, language: str) -> str:
        return menu_name(language, self.content_hash)


def _units(s: str) -> int:
    """Length as LINE counts it (UTF-16 code units)."""
    return len(s.encode("utf-16-le")) // 2


def plain_postbacks_from_env(env: Optional[Dict[str, str]] = None) -> Tuple[str, ...]:
    """The unsigned postbacks the gateway accepts, read as gateway/config.py reads them."""
    raw = ((env if env is not None else os.environ).get("POSTBACK_PLAIN_PAYLOADS") or "").strip()
    if not raw:
        return DEFAULT_PLAIN_POSTBACKS
    return check_plain_postbacks([] if raw.lower() == "none" else raw.split(","))


class _Reader(NodeReader):
    """The rich menu's checks, on top of the shared walking (gateway/yaml_source.py)."""

    error = RichMenuConfigError

    def text(self, node: yaml.Node, path: str, max_units: Optional[int] = None) -> str:
        value = super().text(node, path)
        if max_units is not None and _units(value) > max_units:
            raise self.fail(node, path, f"{value!r} is {_units(value)} characters long; LINE takes at most {max_units}")
        return value

    def integer(self, node: yaml.Node, path: str, low: int, high: int) -> int:
        value = self.scalar(node, path)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.fail(node, path, f"expected a whole number from {low} to {high}, got {value!r}")
        return value

    def boolean(self, node: yaml.Node, path: str) -> bool:
        value = self.scalar(node, path)
        if not isinstance(value, bool):
            raise self.fail(node, path, f"expected true or false, got {value!r}")
        return value

    def colour(self, node: yaml.Node, path: str) -> str:
        value = self.scalar(node, path)
        if not isinstance(value, str) or not _COLOUR.fullmatch(value):
            raise self.fail(node, path, f'expected a colour like "#06C755", got {value!r}')
        return value.upper()

    def per_language(
        self, node: yaml.Node, path: str, languages: Sequence[str], max_units: int, partial: bool = False
    ) -> Dict[str, str]:
        entries = self.mapping(node, path, () if partial else languages, languages if partial else ())
        return {lang: self.text(v, f"{path}.{lang}", max_units) for lang, (_, v) in entries.items()}


def load_config(path: Optional[os.PathLike] = None, plain_postbacks: Optional[Sequence[str]] = None) -> RichMenuConfig:
    """The rich menu of `path` (default gateway/rich_menu.yml), checked."""
    chosen = Path(path or DEFAULT_CONFIG)
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as error:
        raise RichMenuConfigError(f"{chosen}: cannot read the rich menu: {error.strerror}") from error
    return parse_config(text, str(chosen), plain_postbacks)


def parse_config(
    text: str, source: str = "rich_menu.yml", plain_postbacks: Optional[Sequence[str]] = None
) -> RichMenuConfig:
    allowed = tuple(plain_postbacks) if plain_postbacks is not None else plain_postbacks_from_env()
    root = compose(text, source, RichMenuConfigError)
    r = _Reader(source)
    top = r.mapping(
        root,
        "",
        ("size", "languages", "areas"),
        ("grid", "selected", "default_language", "style"),
    )

    size = r.mapping(top["size"][1], "size", ("width", "height"))
    width = r.integer(size["width"][1], "size.width", 1, 10000)
    height = r.integer(size["height"][1], "size.height", 1, 10000)
    if (width, height) not in SIZES:
        raise r.fail(
            top["size"][1],
            "size",
            f"{width}x{height}: LINE takes " + " or ".join(f"{w}x{h}" for w, h in SIZES),
        )

    languages_node = top["languages"][1]
    langs = r.mapping(languages_node, "languages", (), any_key=True)
    if not langs:
        raise r.fail(languages_node, "languages", "expected at least one language")
    chat_bar_text: Dict[str, str] = {}
    for lang, (key, value) in langs.items():
        if not re.fullmatch(r"[a-z]{2}", lang):
            raise r.fail(key, f"languages.{lang}", "expected a two-letter language code (ja, en)")
        entry = r.mapping(value, f"languages.{lang}", ("chat_bar_text",))
        chat_bar_text[lang] = r.text(entry["chat_bar_text"][1], f"languages.{lang}.chat_bar_text", MAX_CHAT_BAR_TEXT)
    languages = tuple(chat_bar_text)
    default_language = "ja"
    if "default_language" in top:
        default_language = r.text(top["default_language"][1], "default_language")
    if default_language not in chat_bar_text:
        node = top["default_language"][1] if "default_language" in top else languages_node
        raise r.fail(node, "default_language", f"{default_language!r} has no menu under `languages`")

    selected = r.boolean(top["selected"][1], "selected") if "selected" in top else True

    style = {"background": "#FFFFFF", "text_color": "#1F2329", "border_color": "#D0D5DC", "border_width": 8}
    style["font_size"] = 130
    if "style" in top:
        style.update(_style(r, top["style"][1], "style"))

    columns, rows = 2, 2
    if "grid" in top:
        grid = r.mapping(top["grid"][1], "grid", ("columns", "rows"))
        columns = r.integer(grid["columns"][1], "grid.columns", 1, MAX_AREAS)
        rows = r.integer(grid["rows"][1], "grid.rows", 1, MAX_AREAS)

    area_nodes = top["areas"][1]
    if not isinstance(area_nodes, yaml.SequenceNode) or not area_nodes.value:
        raise r.fail(area_nodes, "areas", "expected a non-empty list (lines starting with `- `)")
    if len(area_nodes.value) > MAX_AREAS:
        raise r.fail(area_nodes, "areas", f"{len(area_nodes.value)} areas; LINE takes at most {MAX_AREAS}")
    areas: List[Area] = []
    cell = 0
    for i, node in enumerate(area_nodes.value):
        path = f"areas[{i}]"
        entry = r.mapping(node, path, ("label", "action"), ("bounds",) + _STYLE_KEYS[:2] + ("font_size",))
        label = r.per_language(entry["label"][1], f"{path}.label", languages, 100)
        if "bounds" in entry:
            b = r.mapping(entry["bounds"][1], f"{path}.bounds", ("x", "y", "width", "height"))
            bounds = Bounds(
                r.integer(b["x"][1], f"{path}.bounds.x", 0, width - 1),
                r.integer(b["y"][1], f"{path}.bounds.y", 0, height - 1),
                r.integer(b["width"][1], f"{path}.bounds.width", 1, width),
                r.integer(b["height"][1], f"{path}.bounds.height", 1, height),
            )
            if bounds.x + bounds.width > width or bounds.y + bounds.height > height:
                raise r.fail(entry["bounds"][1], f"{path}.bounds", f"goes outside the {width}x{height} image")
        else:
            if cell >= columns * rows:
                raise r.fail(node, path, f"the {columns}x{rows} grid is full: give this area its own `bounds`")
            bounds = grid_cell(cell, columns, rows, width, height)
            cell += 1
        area_style = dict(style)
        area_style.update(_style(r, node, path, only=("background", "text_color", "font_size")))
        action = _action(r, entry["action"][1], f"{path}.action", languages, allowed)
        for lang in languages:
            spoken = action.label.get(lang) or label[lang]
            if _units(spoken) > MAX_ACTION_LABEL:
                where = f"{path}.action.label.{lang}" if lang in action.label else f"{path}.label.{lang}"
                raise r.fail(
                    entry["action"][1] if lang in action.label else entry["label"][1],
                    where,
                    f"{spoken!r} is {_units(spoken)} characters long; an action's label takes at most "
                    f"{MAX_ACTION_LABEL}: give a shorter `action.label.{lang}`",
                )
        areas.append(
            Area(label, bounds, action, area_style["background"], area_style["text_color"], area_style["font_size"])
        )

    canonical = json.dumps(
        {"render": RENDER_VERSION, "yaml": yaml.safe_load(text)}, sort_keys=True, ensure_ascii=False, default=str
    )
    content_hash = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
    return RichMenuConfig(
        source=source,
        width=width,
        height=height,
        selected=selected,
        default_language=default_language,
        chat_bar_text=chat_bar_text,
        areas=tuple(areas),
        border_color=style["border_color"],
        border_width=style["border_width"],
        content_hash=content_hash,
    )


def _style(r: _Reader, node: yaml.Node, path: str, only: Sequence[str] = _STYLE_KEYS) -> Dict[str, Any]:
    if path == "style":
        entries = r.mapping(node, path, (), _STYLE_KEYS)
    else:  # an area: its style keys among its other fields (checked by the caller)
        entries = {k: v for k, v in ((str(k.value), (k, v)) for k, v in node.value) if k in only}
    out: Dict[str, Any] = {}
    for key, (_, value) in entries.items():
        where = f"{path}.{key}"
        if key in ("background", "text_color", "border_color"):
            out[key] = r.colour(value, where)
        elif key == "border_width":
            out[key] = r.integer(value, where, 0, 100)
        else:
            out[key] = r.integer(value, where, 20, 400)
    return out


def _action(r: _Reader, node: yaml.Node, path: str, languages: Sequence[str], allowed: Sequence[str]) -> Action:
    if not isinstance(node, yaml.MappingNode):
        raise r.fail(node, path, "expected a mapping (type: ...)")
    kinds = {"postback": ("data", "display_text"), "uri": ("uri",), "message": ("text",)}
    type_node = next((v for k, v in node.value if k.value == "type"), None)
    if type_node is None:
        raise r.fail(node, path, "missing `type` (postback, uri or message)")
    kind = r.text(type_node, f"{path}.type")
    if kind not in kinds:
        raise r.fail(type_node, f"{path}.type", f"{kind!r}: expected postback, uri or message")
    entries = r.mapping(node, path, ("type",) + kinds[kind], ("label",))
    label = (
        r.per_language(entries["label"][1], f"{path}.label", languages, MAX_ACTION_LABEL, partial=True)
        if "label" in entries
        else {}
    )
    if kind == "postback":
        data_node = entries["data"][1]
        data = r.text(data_node, f"{path}.data", MAX_DATA)
        if data not in allowed:
            raise r.fail(
                data_node,
                f"{path}.data",
                f"{data!r} is not one of the postbacks the gateway accepts without a signature: "
                + (", ".join(allowed) or "(none: POSTBACK_PLAIN_PAYLOADS=none)")
                + " (gateway/customer_input.py)",
            )
        display = r.per_language(entries["display_text"][1], f"{path}.display_text", languages, MAX_DISPLAY_TEXT)
        return Action("postback", data=data, display_text=display, label=label)
    if kind == "uri":
        uri_node = entries["uri"][1]
        uri = r.text(uri_node, f"{path}.uri", MAX_URI)
        if not re.match(r"https?://[^\s/]+", uri):
            raise r.fail(uri_node, f"{path}.uri", f"{uri!r}: expected a web address (https://...)")
        return Action("uri", uri=uri, label=label)
    text = r.per_language(entries["text"][1], f"{path}.text", languages, MAX_DISPLAY_TEXT)
    return Action("message", text=text, label=label)


def grid_cell(index: int, columns: int, rows: int, width: int, height: int) -> Bounds:
    """The `index`-th cell (row by row) of a columns x rows grid over the image; the cells
    tile the image exactly (the last column and row take the remainder)."""
    col, row = index % columns, index // columns
    x0, x1 = width * col // columns, width * (col + 1) // columns
    y0, y1 = height * row // rows, height * (row + 1) // rows
    return Bounds(x0, y0, x1 - x0, y1 - y0)


# --- the rich menu object ----------------------------------------------------------------------
def menu_object(config: RichMenuConfig, language: str) -> Dict[str, Any]:
    """The Messaging API's rich menu object for `language`."""
    areas = []
    for area in config.areas:
        a = area.action
        label = a.label.get(language) or area.label[language]
        if a.type == "postback":
            action = {"type": "postback", "label": label, "data": a.data, "displayText": a.display_text[language]}
        elif a.type == "uri":
            action = {"type": "uri", "label": label, "uri": a.uri}
        else:
            action = {"type": "message", "label": label, "text": a.text[language]}
        areas.append({"bounds": area.bounds.to_json(), "action": action})
    name = config.name(language)
    assert len(name) <= MAX_NAME
    return {
        "size": {"width": config.width, "height": config.height},
        "selected": config.selected,
        "name": name,
        "chatBarText": config.chat_bar_text[language],
        "areas": areas,
    }


# --- drawing -----------------------------------------------------------------------------------
def find_font() -> Path:
    """A font with Japanese glyphs: RICH_MENU_FONT, Debian's IPA P Gothic, else what
    fontconfig lists for Japanese."""
    env = os.environ.get("RICH_MENU_FONT")
    if env:
        if Path(env).is_file():
            return Path(env)
        raise FontMissing(f"RICH_MENU_FONT={env}: no such file")
    if IPA_GOTHIC.is_file():
        return IPA_GOTHIC
    if shutil.which("fc-list"):
        try:
            out = subprocess.run(
                ["fc-list", ":lang=ja", "file"], capture_output=True, text=True, timeout=20, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        files = sorted(
            (line.split(":")[0].strip() for line in out.splitlines() if line.strip()),
            key=lambda f: (not re.search(r"gothic|sans", f, re.I), f),
        )
        for f in files:
            if f.lower().endswith((".ttf", ".otf", ".ttc")) and Path(f).is_file():
                return Path(f)
    raise FontMissing(
        f"no Japanese font for the rich menu's labels: install Debian's {FONT_PACKAGE} "
        f"(apt-get install {FONT_PACKAGE}), or set RICH_MENU_FONT to a .ttf/.otf file"
    )


def _wrap(text: str, font: Any, max_width: float) -> List[str]:
    """Lines of `text` that fit `max_width`: English breaks at spaces, Japanese anywhere."""
    words = text.split(" ") if " " in text else list(text)
    joiner = " " if " " in text else ""
    lines: List[str] = []
    current = ""
    for w in words:
        trial = f"{current}{joiner}{w}" if current else w
        if font.getlength(trial) <= max_width or not current:
            current = trial
        else:
            lines.append(current)
            current = w
    if current:
        lines.append(current)
    if len(lines) == 2 and joiner:
        # two lines of about the same width read better than a long one and a short one
        splits = [(" ".join(words[:i]), " ".join(words[i:])) for i in range(1, len(words))]
        fitting = [s for s in splits if max(font.getlength(s[0]), font.getlength(s[1])) <= max_width]
        if fitting:
            lines = list(min(fitting, key=lambda s: max(font.getlength(s[0]), font.getlength(s[1]))))
    return lines


def render_image(config: RichMenuConfig, language: str, font_path: Optional[Path] = None) -> bytes:
    """The menu's PNG for `language`: exactly config.width x config.height, <= 1 MB."""
    from PIL import Image, ImageDraw, ImageFont

    font_file = str(font_path or find_font())
    image = Image.new("RGB", (config.width, config.height), config.border_color)
    draw = ImageDraw.Draw(image)
    half = config.border_width / 2
    for area in config.areas:
        b = area.bounds
        # each area inside half a border on every side: borders between areas are whole
        box = (
            b.x + (half if b.x > 0 else 0),
            b.y + (half if b.y > 0 else 0),
            b.x + b.width - 1 - (half if b.x + b.width < config.width else 0),
            b.y + b.height - 1 - (half if b.y + b.height < config.height else 0),
        )
        draw.rectangle(box, fill=area.background)
        text = area.label[language]
        max_w, max_h = (box[2] - box[0]) * 0.86, (box[3] - box[1]) * 0.8
        size = area.font_size
        while True:
            font = ImageFont.truetype(font_file, size)
            lines = _wrap(text, font, max_w)
            line_h = size * 1.25
            if (
                size <= 24
                or len(lines) <= 2
                and all(font.getlength(s) <= max_w for s in lines)
                and line_h * len(lines) <= max_h
            ):
                break
            size -= 6
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        top = cy - line_h * len(lines) / 2 + line_h / 2
        for n, line in enumerate(lines):
            draw.text((cx, top + n * line_h), line, font=font, fill=area.text_color, anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    data = out.getvalue()
    if len(data) > MAX_IMAGE_BYTES:
        raise RuntimeError(f"the {language} rich menu image is {len(data)} bytes; LINE takes at most 1 MB")
    return data


@dataclass
class Rendered:
    language: str
    menu: Dict[str, Any]
    image: bytes


def render_all(config: RichMenuConfig, font_path: Optional[Path] = None) -> List[Rendered]:
    font = font_path or find_font()
    return [Rendered(lang, menu_object(config, lang), render_image(config, lang, font)) for lang in config.languages]


def write_preview(config: RichMenuConfig, out_dir: os.PathLike) -> List[Path]:
    """DIR/<lang>.png and DIR/<lang>.json (the object `apply` sends)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for r in render_all(config):
        png, js = out / f"{r.language}.png", out / f"{r.language}.json"
        png.write_bytes(r.image)
        js.write_text(json.dumps(r.menu, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        written += [png, js]
    return written


# --- publishing --------------------------------------------------------------------------------
@dataclass
class ApplyReport:
    menus: Dict[str, str] = field(default_factory=dict)  # language -> rich menu id
    created: List[str] = field(default_factory=list)
    uploaded: List[str] = field(default_factory=list)
    kept: List[str] = field(default_factory=list)
    default_set: bool = False
    deleted: List[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.uploaded or self.default_set or self.deleted)

    def lines(self) -> List[str]:
        out = [f"{lang}: {mid}" for lang, mid in self.menus.items()]
        out += [f"created {m}" for m in self.created]
        out += [f"image uploaded to {m}" for m in self.uploaded]
        out += [f"unchanged {m}" for m in self.kept]
        if self.default_set:
            out.append(f"default menu set to {self.menus.get(next(iter(self.menus), ''), '')}")
        out += [f"deleted the older menu {m}" for m in self.deleted]
        if not self.changed:
            out.append("nothing changed: the rich menus on LINE are this file's already")
        return out


async def apply(config: RichMenuConfig, line: LineApi, rendered: Optional[List[Rendered]] = None) -> ApplyReport:
    """Publish `config` (see the module docstring); idempotent."""
    rendered = rendered if rendered is not None else render_all(config)
    report = ApplyReport()
    existing = await line.rich_menus()
    ours = {str(m.get("name")): str(m.get("richMenuId")) for m in existing if parse_menu_name(str(m.get("name") or ""))}
    for r in rendered:
        name = r.menu["name"]
        menu_id = ours.get(name)
        if menu_id is not None:
            if await line.rich_menu_image(menu_id) is None:  # an earlier run stopped before the upload
                await line.upload_rich_menu_image(menu_id, r.image, "image/png")
                report.uploaded.append(menu_id)
            else:
                report.kept.append(menu_id)
        else:
            await line.validate_rich_menu(r.menu)
            menu_id = await line.create_rich_menu(r.menu)
            report.created.append(menu_id)
            await line.upload_rich_menu_image(menu_id, r.image, "image/png")
            report.uploaded.append(menu_id)
        report.menus[r.language] = menu_id
    default_id = report.menus[config.default_language]
    if await line.default_rich_menu() != default_id:
        await line.set_default_rich_menu(default_id)
        report.default_set = True
    current = set(report.menus.values())
    for name, menu_id in ours.items():
        if menu_id not in current and name.startswith(MENU_PREFIX):
            await line.delete_rich_menu(menu_id)
            report.deleted.append(menu_id)
    return report


# --- command line ------------------------------------------------------------------------------
def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.line.rich_menu", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=None, help=f"the YAML (default {DEFAULT_CONFIG})")
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="draw the menus into a folder: <lang>.png and <lang>.json")
    render.add_argument("--out", required=True)
    sub.add_parser(
        "apply", help="publish to LINE (LINE_CHANNEL_ACCESS_TOKEN, LINE_API_BASE_URL, LINE_DATA_API_BASE_URL)"
    )
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        if args.command == "render":
            for path in write_preview(config, args.out):
                print(path)
            return 0
        token = os.environ.get("LINE_CHANNEL_ACCESS_TOKEN") or ""
        if not token:
            print("rich menu: LINE_CHANNEL_ACCESS_TOKEN is not set", file=sys.stderr)
            return 2
        rendered = render_all(config)
        report = asyncio.run(_apply_with_env(config, rendered, token))
    except RichMenuConfigError as exc:
        print(f"rich menu: {exc}", file=sys.stderr)
        return 2
    except FontMissing as exc:
        print(f"rich menu: {exc}", file=sys.stderr)
        return 2
    except RichMenuRefused as exc:
        print(f"rich menu: LINE refused it: {exc}", file=sys.stderr)
        for d in exc.details:
            print(f"  {d.get('property', '')}: {d.get('message', '')}", file=sys.stderr)
        return 1
    except LineApiError as exc:
        print(f"rich menu: {exc}", file=sys.stderr)
        return 1
    for line in report.lines():
        print(line)
    return 0


async def _apply_with_env(config: RichMenuConfig, rendered: List[Rendered], token: str) -> ApplyReport:
    line = LineApi(
        token,
        os.environ.get("LINE_API_BASE_URL") or DEFAULT_API_BASE,
        os.environ.get("LINE_DATA_API_BASE_URL") or DEFAULT_DATA_API_BASE,
    )
    try:
        return await apply(config, line, rendered)
    finally:
        await line.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = [
    "ApplyReport",
    "FontMissing",
    "RichMenuConfig",
    "RichMenuConfigError",
    "apply",
    "find_font",
    "grid_cell",
    "load_config",
    "menu_object",
    "parse_config",
    "render_all",
    "render_image",
    "write_preview",
]
