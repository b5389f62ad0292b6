"""The LINE rich menu (gateway/rich_menu.yml -> gateway/line/rich_menu.py): the YAML is
checked with its lines named, drawn at LINE's exact size, published to the LINE API
emulator idempotently (validate, create, upload to the data API, default, delete the old
ones); an English customer gets the English menu linked once; a tap reaches Rasa."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import pytest
import pytest_asyncio
from PIL import Image

from gateway.line import rich_menu
from gateway.line.api import LineApi, RichMenuRefused
from gateway.line.rich_menu_links import parse_menu_name
from tests.gateway.test_gateway_app import (  # noqa: F401  (fixtures used by name)
    EN_USER,
    TOKEN,
    USER,
    emu,
    fake_bot,
    gw,
    make_gateway,
    replies,
    wait_until,
)

YAML = Path(rich_menu.DEFAULT_CONFIG).read_text(encoding="utf-8")
ALLOWED = ("/greet", "/check_order_status", "/request_human", "/link_account")
# the fourth area's action, as a web page instead (for the uri checks)
LINK_ACTION = """      type: postback
      # LINE's account link: the bot sends the shop's login page; once the customer has
      # logged in there, their next claim needs no order number. Already linked: the bot
      # says as whom, with a button to unlink (docs/account-link.md).
      data: /link_account
      display_text: {ja: アカウントを連携したい, en: Link my shop account}"""
AS_PAGE = "      type: uri\n      uri: https://example.com/help"


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.fixture(scope="module")
def config():
    return rich_menu.load_config(plain_postbacks=ALLOWED)


@pytest.fixture(scope="module")
def rendered(config):
    return rich_menu.render_all(config)


@pytest_asyncio.fixture
async def line(emu):
    api = LineApi(TOKEN, emu.base_url, emu.base_url, max_attempts=1)
    yield api
    await api.close()


# --- the YAML, the images, the objects ----------------------------------------------------------
def test_the_yaml_draws_one_png_per_language_of_the_exact_size_and_under_1_mb(config, rendered):
    assert [r.language for r in rendered] == ["ja", "en"]
    for r in rendered:
        assert r.image[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(r.image) <= 1024 * 1024
        img = Image.open(io.BytesIO(r.image))
        assert img.format == "PNG" and img.size == (2500, 1686) == (config.width, config.height)
        assert len(set(img.convert("RGB").getdata())) > 2  # labels are drawn, not an empty grid


def test_the_menu_objects_are_lines_and_their_areas_tile_the_grid(config, rendered):
    ja, en = (r.menu for r in rendered)
    for menu in (ja, en):
        assert set(menu) == {"size", "selected", "name", "chatBarText", "areas"}
        assert menu["size"] == {"width": 2500, "height": 1686} and menu["selected"] is True
        assert len(menu["name"]) <= 300 and parse_menu_name(menu["name"])[1] == config.content_hash
        assert 1 <= len(menu["chatBarText"]) <= 14
        cells = sorted(
            (a["bounds"]["x"], a["bounds"]["y"], a["bounds"]["width"], a["bounds"]["height"]) for a in menu["areas"]
        )
        assert cells == [(0, 0, 1250, 843), (0, 843, 1250, 843), (1250, 0, 1250, 843), (1250, 843, 1250, 843)]
        assert sum(w * h for _, _, w, h in cells) == 2500 * 1686  # all of it, nothing twice
        for area in menu["areas"]:
            assert len(area["action"]["label"]) <= 20
    assert parse_menu_name(ja["name"])[0] == "ja" and parse_menu_name(en["name"])[0] == "en"
    assert ja["chatBarText"] == "メニュー" and en["chatBarText"] == "Menu"
    actions = [a["action"] for a in ja["areas"]]
    assert [(a["type"], a.get("data") or a.get("uri")) for a in actions] == [
        ("postback", "/greet"),
        ("postback", "/check_order_status"),
        ("postback", "/request_human"),
        ("postback", "/link_account"),
    ]
    assert [a.get("displayText") for a in actions[:3]] == ["注文のトラブル", "注文状況を確認", "担当者と話したい"]
    assert [a["action"].get("displayText") for a in en["areas"][:3]] == [
        "Problem with an order",
        "Order status",
        "I'd like to talk to a person",
    ]
    # the drawn label is longer than LINE's 20 for an action label: the YAML gives a short one
    assert en["areas"][0]["action"]["label"] == "Order problem"


def test_the_content_hash_follows_the_yaml_not_its_comments():
    same = rich_menu.parse_config(YAML + "\n# a comment\n", plain_postbacks=ALLOWED)
    other = rich_menu.parse_config(
        YAML.replace("chat_bar_text: Menu", "chat_bar_text: Help menu"), plain_postbacks=ALLOWED
    )
    base = rich_menu.parse_config(YAML, plain_postbacks=ALLOWED)
    assert same.content_hash == base.content_hash != other.content_hash


def test_postback_data_outside_the_gateways_allowlist_is_refused_naming_the_line():
    bad = YAML.replace("data: /check_order_status", "data: /report_missing_item")
    with pytest.raises(rich_menu.RichMenuConfigError) as err:
        rich_menu.parse_config(bad, "gateway/rich_menu.yml", plain_postbacks=ALLOWED)
    n = line_of(bad, "data: /report_missing_item")
    assert str(err.value).startswith(f"gateway/rich_menu.yml:{n}: areas[1].action.data: '/report_missing_item'")
    assert "/greet, /check_order_status, /request_human" in str(err.value)


def test_the_allowlist_is_the_gateways_own_by_default(monkeypatch):
    monkeypatch.setenv("POSTBACK_PLAIN_PAYLOADS", "/greet,/request_human")
    with pytest.raises(rich_menu.RichMenuConfigError, match=r"areas\[1\]\.action\.data"):
        rich_menu.parse_config(YAML)
    monkeypatch.delenv("POSTBACK_PLAIN_PAYLOADS")
    assert rich_menu.parse_config(YAML).areas[1].action.data == "/check_order_status"


def test_a_chat_bar_text_over_14_characters_is_refused_naming_the_line():
    bad = YAML.replace("chat_bar_text: メニュー", "chat_bar_text: ご注文サポートのメニューはこちら")
    with pytest.raises(rich_menu.RichMenuConfigError) as err:
        rich_menu.parse_config(bad, "gateway/rich_menu.yml", plain_postbacks=ALLOWED)
    n = line_of(bad, "ご注文サポートのメニューはこちら")
    assert re.match(rf"gateway/rich_menu.yml:{n}: languages.ja.chat_bar_text: .* at most 14", str(err.value))


@pytest.mark.parametrize(
    "old, new, where",
    [
        ("size: {width: 2500, height: 1686}", "size: {width: 2400, height: 1686}", "size"),
        ('background: "#06C755"', 'background: "green"', "areas[0].background"),
        (LINK_ACTION, AS_PAGE.replace("https://example.com/help", "javascript:alert(1)"), "areas[3].action.uri"),
        ("label: {en: Order problem}", "label: {en: A problem with my order!}", "areas[0].action.label.en"),
        (
            "display_text: {ja: 注文状況を確認, en: Order status}",
            "display_text: {ja: 注文状況を確認}",
            "areas[1].action.display_text",
        ),
        (
            "  - label: {ja: アカウント連携, en: Link account}",
            "  - label: {ja: アカウント連携, en: Link account}\n    colour: red",
            "areas[3].colour",
        ),
    ],
)
def test_other_mistakes_name_their_line_and_field(old, new, where):
    bad = YAML.replace(old, new)
    assert bad != YAML
    with pytest.raises(rich_menu.RichMenuConfigError) as err:
        rich_menu.parse_config(bad, "m.yml", plain_postbacks=ALLOWED)
    assert re.match(rf"m\.yml:\d+: {re.escape(where)}: ", str(err.value)), str(err.value)


def test_a_missing_font_names_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setenv("RICH_MENU_FONT", str(tmp_path / "none.ttf"))
    with pytest.raises(rich_menu.FontMissing):
        rich_menu.find_font()
    monkeypatch.delenv("RICH_MENU_FONT")
    monkeypatch.setattr(rich_menu, "IPA_GOTHIC", tmp_path / "missing.ttf")
    monkeypatch.setattr(rich_menu.shutil, "which", lambda name: None)
    with pytest.raises(rich_menu.FontMissing, match="fonts-ipafont-gothic"):
        rich_menu.find_font()


def test_render_writes_the_pngs_and_the_json(tmp_path, capsys):
    assert rich_menu.main(["render", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["en.json", "en.png", "ja.json", "ja.png"]
    assert Image.open(tmp_path / "en.png").size == (2500, 1686)


# --- publishing ------------------------------------------------------------------------------------
def writes(emu):
    return [(r["method"], r["path"]) for r in emu.requests if r["method"] != "GET"]


@pytest.mark.asyncio
async def test_apply_validates_creates_uploads_and_sets_the_default_then_a_second_run_changes_nothing(
    emu, line, config, rendered
):
    report = await rich_menu.apply(config, line, rendered)
    ja_id, en_id = report.menus["ja"], report.menus["en"]
    assert report.created == [ja_id, en_id] and report.uploaded == [ja_id, en_id] and report.default_set
    assert [p for _, p in writes(emu)] == [
        "/v2/bot/richmenu/validate",
        "/v2/bot/richmenu",
        f"/v2/bot/richmenu/{ja_id}/content",
        "/v2/bot/richmenu/validate",
        "/v2/bot/richmenu",
        f"/v2/bot/richmenu/{en_id}/content",
        f"/v2/bot/user/all/richmenu/{ja_id}",
    ]
    upload = emu.requests_to(f"/v2/bot/richmenu/{ja_id}/content")[0]
    assert upload["headers"]["Content-Type"] == "image/png" and upload["status"] == 200
    assert emu.default_rich_menu == ja_id
    assert emu.rich_menu_images[ja_id][0] == rendered[0].image
    assert {m["name"] for m in emu.rich_menus.values()} == {config.name("ja"), config.name("en")}

    emu.requests.clear()
    again = await rich_menu.apply(config, line, rich_menu.render_all(config))
    assert not again.changed and again.kept == [ja_id, en_id] and again.menus == report.menus
    assert writes(emu) == []  # nothing created, uploaded, set or deleted
    assert len(emu.rich_menus) == 2


@pytest.mark.asyncio
async def test_a_changed_yaml_replaces_the_old_menus_and_leaves_others_menus_alone(emu, line, config, rendered):
    first = await rich_menu.apply(config, line, rendered)
    foreign = await line.create_rich_menu({**rendered[0].menu, "name": "campaign-2026"})
    changed = rich_menu.parse_config(
        YAML.replace("chat_bar_text: メニュー", "chat_bar_text: ご用件"), plain_postbacks=ALLOWED
    )
    report = await rich_menu.apply(changed, line)
    assert set(report.created) == set(report.menus.values()) and not set(report.menus.values()) & set(
        first.menus.values()
    )
    assert sorted(report.deleted) == sorted(first.menus.values())
    assert emu.default_rich_menu == report.menus["ja"]
    assert emu.rich_menus[report.menus["ja"]]["chatBarText"] == "ご用件"
    assert set(emu.rich_menus) == {*report.menus.values(), foreign}


@pytest.mark.asyncio
async def test_apply_finishes_a_run_that_stopped_before_the_upload(emu, line, config, rendered):
    orphan = await line.create_rich_menu(rendered[0].menu)  # created, never given its image
    report = await rich_menu.apply(config, line, rendered)
    assert report.menus["ja"] == orphan and orphan in report.uploaded
    assert orphan in emu.rich_menu_images and emu.default_rich_menu == orphan


@pytest.mark.asyncio
async def test_apply_from_the_command_line_uses_the_environment(emu, monkeypatch, capsys):
    monkeypatch.setenv("LINE_CHANNEL_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("LINE_API_BASE_URL", emu.base_url)
    monkeypatch.setenv("LINE_DATA_API_BASE_URL", emu.base_url)
    code = await asyncio.to_thread(rich_menu.main, ["apply"])
    assert code == 0 and emu.default_rich_menu in emu.rich_menu_images
    assert "created" in capsys.readouterr().out
    assert await asyncio.to_thread(rich_menu.main, ["apply"]) == 0
    assert "nothing changed" in capsys.readouterr().out
    monkeypatch.setenv("LINE_CHANNEL_ACCESS_TOKEN", "wrong")
    assert await asyncio.to_thread(rich_menu.main, ["apply"]) == 1


# --- the emulator ----------------------------------------------------------------------------------
def png(width, height):
    out = io.BytesIO()
    Image.new("RGB", (width, height), "#06C755").save(out, format="PNG")
    return out.getvalue()


@pytest.mark.asyncio
async def test_the_emulator_refuses_an_image_of_the_wrong_size_type_or_weight(emu, line, rendered):
    menu_id = await line.create_rich_menu(rendered[0].menu)
    with pytest.raises(RichMenuRefused) as err:
        await line.upload_rich_menu_image(menu_id, png(2500, 843))
    assert err.value.status == 400 and "2500x843" in err.value.message and "2500x1686" in err.value.message
    with pytest.raises(RichMenuRefused) as err:
        await line.upload_rich_menu_image(menu_id, png(2500, 1686), "image/jpeg")  # says JPEG, is a PNG
    assert err.value.status == 400
    with pytest.raises(RichMenuRefused) as err:
        await line.upload_rich_menu_image(menu_id, png(2500, 1686), "image/gif")
    assert err.value.status == 415
    with pytest.raises(RichMenuRefused) as err:
        await line.upload_rich_menu_image(menu_id, png(2500, 1686) + b"\0" * (1024 * 1024))
    assert err.value.status == 413
    with pytest.raises(RichMenuRefused) as err:  # no image yet: cannot be anyone's menu
        await line.set_default_rich_menu(menu_id)
    assert err.value.status == 400 and "upload richmenu image" in err.value.message
    await line.upload_rich_menu_image(menu_id, rendered[0].image)
    with pytest.raises(RichMenuRefused):  # an image cannot be replaced
        await line.upload_rich_menu_image(menu_id, rendered[0].image)
    await line.set_default_rich_menu(menu_id)
    assert await line.default_rich_menu() == menu_id
    assert await line.user_rich_menu(USER) is None  # the default is not a per-user link (LINE)


@pytest.mark.asyncio
async def test_the_emulator_validates_the_object_as_line_does(line, rendered):
    good = rendered[0].menu
    await line.validate_rich_menu(good)
    broken = {
        **good,
        "chatBarText": "x" * 15,
        "areas": [
            {"bounds": {"x": 2000, "y": 0, "width": 1250, "height": 843}, "action": good["areas"][0]["action"]},
            {"bounds": {"x": 0, "y": 0, "width": 10, "height": 10}, "action": {"type": "postback"}},
            {"bounds": {"x": 0, "y": 0, "width": 10, "height": 10}, "action": {"type": "teleport"}},
        ],
    }
    with pytest.raises(RichMenuRefused) as err:
        await line.validate_rich_menu(broken)
    props = {d["property"] for d in err.value.details}
    assert props == {"chatBarText", "areas[0].bounds", "areas[1].action.data", "areas[2].action.type"}
    with pytest.raises(RichMenuRefused):
        await line.create_rich_menu({**good, "size": {"width": 2500, "height": 2500}})


# --- the gateway: per-language menus, taps ------------------------------------------------------
@pytest.mark.asyncio
async def test_an_english_customers_first_message_links_the_english_menu_once(
    emu, gw, line, config, rendered, fake_bot
):
    report = await rich_menu.apply(config, line, rendered)
    emu.requests.clear()
    await gw.client.send_text(EN_USER, "hello")
    assert await wait_until(lambda: emu.user_rich_menus.get(EN_USER) == report.menus["en"])
    await gw.client.send_text(EN_USER, "again")
    await gw.client.send_text(USER, "こんにちは")  # Japanese: the default menu, nothing linked
    assert await wait_until(lambda: len(replies(emu)) == 3)
    await gw.gateway.processor.rich_menus.drain()
    links = [r for r in emu.requests if r["method"] == "POST" and r["path"].startswith("/v2/bot/user/U")]
    assert [r["path"] for r in links] == [f"/v2/bot/user/{EN_USER}/richmenu/{report.menus['en']}"]
    assert len(emu.requests_to("/v2/bot/richmenu/list")) == 1  # the list is cached
    assert USER not in emu.user_rich_menus
    assert await line.user_rich_menu(EN_USER) == report.menus["en"]


@pytest.mark.asyncio
async def test_a_follow_links_the_english_menu_and_a_failed_link_never_fails_the_turn(emu, gw, line, config, rendered):
    report = await rich_menu.apply(config, line, rendered)
    follower = "U" + "e" * 32
    emu.set_profile(follower, "Noah", "en")
    emu.fail_next(f"/v2/bot/user/{follower}/richmenu", 500)
    await gw.client.post([await gw.client.follow_event(follower)])
    assert await wait_until(lambda: len(replies(emu)) == 1)  # greeted all the same
    await gw.gateway.processor.rich_menus.drain()
    assert follower not in emu.user_rich_menus  # the link failed: tried again next time
    await gw.client.send_text(follower, "hi")
    assert await wait_until(lambda: emu.user_rich_menus.get(follower) == report.menus["en"])


@pytest.mark.asyncio
async def test_after_the_menus_are_replaced_an_english_customer_is_linked_to_the_new_one(
    emu, gw, line, config, rendered
):
    first = await rich_menu.apply(config, line, rendered)
    await gw.client.send_text(EN_USER, "hello")
    assert await wait_until(lambda: emu.user_rich_menus.get(EN_USER) == first.menus["en"])
    changed = rich_menu.parse_config(
        YAML.replace("chat_bar_text: Menu", "chat_bar_text: Help"), plain_postbacks=ALLOWED
    )
    second = await rich_menu.apply(changed, line)
    assert EN_USER not in emu.user_rich_menus  # LINE drops the links of a deleted menu
    gw.gateway.processor.rich_menus._menus_until = 0  # the list cache's time is up
    await gw.client.send_text(EN_USER, "again")
    assert await wait_until(lambda: emu.user_rich_menus.get(EN_USER) == second.menus["en"])


@pytest.mark.asyncio
async def test_a_tap_on_the_menu_an_unsigned_postback_reaches_rasa(emu, gw, fake_bot, rendered):
    area = rendered[0].menu["areas"][1]["action"]
    assert area == {
        "type": "postback",
        "label": "注文状況",
        "data": "/check_order_status",
        "displayText": "注文状況を確認",
    }
    await gw.client.post([await gw.client.postback_event(USER, area["data"])])
    assert await wait_until(lambda: len(replies(emu)) == 1)
    assert [g[1] for g in fake_bot.got] == ["/check_order_status"]


def test_an_area_can_open_a_web_page_instead():
    config = rich_menu.parse_config(YAML.replace(LINK_ACTION, AS_PAGE), "m.yml", plain_postbacks=ALLOWED)
    ja = rich_menu.menu_object(config, "ja")
    assert ja["areas"][3]["action"]["type"] == "uri"
    assert ja["areas"][3]["action"]["uri"] == "https://example.com/help"
