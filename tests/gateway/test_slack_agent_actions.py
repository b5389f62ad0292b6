"""Agents act from the Slack card: combinations, goodwill (a modal), reassign, escalate and
suggested replies (a modal), through the real gateway app (bolt), the Slack API emulator
(views.open with the click's trigger_id, view submissions signed like Slack's) and the
LINE emulator. Rasa and the action server are a stand-in (`AgentBot`) that verifies the
gateway's signed approval and decides like bot/actions/agent.py: the whole stack with the
real bot is tests/system/line's."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any, Dict, List

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from contracts.approvals import approval_notice, enough_approvers, verify_approval
from devkit.emulators.slack_api import SlackApiEmulator, validate_blocks
from devkit.emulators.slack_client import SlackEventsClient
from gateway.app import GATEWAY, create_app
from gateway.core.cases import Case, MemoryCaseStore
from gateway.core.events import MemoryEventStore
from gateway.slack.cards import case_card
from tests.gateway.test_gateway_app import RASA_TOKEN, FakeBot, emu, serving, settings_for  # noqa: F401
from tests.gateway.test_slack_desk import sample_case

TOKEN, SIGNING, KEY = "xoxb-unit-test", "unit-signing-secret", "agent-approval-test-key"
CHANNEL, SUPERVISORS = "C0HANDOFF1", "C0SUPERVIS"
AGENT, SUPERVISOR, OUTSIDER = "U0AGENT001", "U0AGENT002", "U0OUTSIDER"
AGENT_LIMIT, MAX_GOODWILL = 3000, 10000
COMBO = "send_item+refund_delivery_fee"


def agent_case(**context_changes: Any) -> Case:
    case = sample_case()
    case.context.update(
        {
            "combinations": [
                {
                    "name": COMBO,
                    "parts": [{"kind": "send_item", "amount": 0}, {"kind": "refund_delivery_fee", "amount": 300}],
                    "needs_approval": False,
                }
            ],
            "goodwill": {"kinds": ["store_credit", "coupon"], "agent_limit": AGENT_LIMIT, "max_amount": MAX_GOODWILL},
        }
    )
    case.context.update(context_changes)
    return case


class AgentBot(FakeBot):
    """FakeBot plus Rasa's tracker events and trigger_intent; an agent's approval is decided
    like bot/actions/agent.py: the signature verified, goodwill above the agent's limit needs
    the supervisor too, above the maximum it is refused, and a case is given once."""

    def __init__(self) -> None:
        super().__init__()
        self.slots: Dict[str, Dict[str, Any]] = defaultdict(dict)
        self.approvals: List[Any] = []  # verified AgentApprovals, in order
        self.given: Dict[str, List[str]] = defaultdict(list)  # sender -> what was applied

    def rasa_app(self) -> web.Application:
        app = super().rasa_app()

        async def append(request: web.Request) -> web.Response:
            assert request.query.get("token") == RASA_TOKEN
            for event in await request.json():
                if event.get("event") == "slot":
                    self.slots[request.match_info["sender"]][event["name"]] = event["value"]
            return web.json_response({})

        async def trigger(request: web.Request) -> web.Response:
            assert request.query.get("token") == RASA_TOKEN
            sender = request.match_info["sender"]
            return web.json_response({"tracker": {}, "messages": self.decide(sender)})

        app.router.add_post("/conversations/{sender}/tracker/events", append)
        app.router.add_post("/conversations/{sender}/trigger_intent", trigger)
        return app

    def decide(self, sender: str) -> List[Dict[str, Any]]:
        slots = self.slots[sender]
        kind = slots.get("approved_remedy")
        approval = verify_approval(KEY, slots.get("agent_approval"), case_id="K7", sender_id=sender, now=time.time())
        assert approval.remedy == kind
        self.approvals.append(approval)
        if kind != "goodwill":
            if [g for g in self.given[sender] if g != "goodwill"]:  # one remedy per case
                return [{"recipient_id": sender, "custom": approval_notice("refused", kind, reason="already_remedied")}]
            self.given[sender].append(kind)
            return [{"recipient_id": sender, "text": f"{kind} を手配しました。"}]
        gw = approval.goodwill
        if gw.amount > MAX_GOODWILL:
            return [{"recipient_id": sender, "custom": approval_notice("refused", kind, reason="goodwill_above_max")}]
        if gw.amount > AGENT_LIMIT and not enough_approvers(approval.approvers, [SUPERVISOR]):
            notice = approval_notice(
                "needs_supervisor",
                kind,
                amount=gw.amount,
                value=gw.amount,
                agent_limit=AGENT_LIMIT,
                approvers=[a.name for a in approval.approvers],
            )
            return [{"recipient_id": sender, "custom": notice}]
        if "goodwill" in self.given[sender]:
            return [
                {"recipient_id": sender, "custom": approval_notice("refused", kind, reason="goodwill_already_given")}
            ]
        self.given[sender].append("goodwill")
        return [{"recipient_id": sender, "text": f"お詫びとして{gw.amount:,}円分をお付けしました。"}]


@pytest_asyncio.fixture
async def agent_bot():
    async for bot in serving(AgentBot()):
        yield bot


@pytest_asyncio.fixture
async def slack():
    emulator = SlackApiEmulator(TOKEN, channels={CHANNEL: [AGENT, SUPERVISOR], SUPERVISORS: [SUPERVISOR]})
    emulator.url = await emulator.start()
    yield emulator
    await emulator.stop()


class Desk:
    """The gateway under test, the agents' Slack client and helpers to read what happened."""

    def __init__(self, server: TestServer, client: SlackEventsClient, cases: MemoryCaseStore, slack, line) -> None:
        self.server, self.client, self.cases, self.slack, self.line = server, client, cases, slack, line

    async def open_case(self, case: Case) -> Case:
        case, _ = await self.cases.open(case)
        return await self.server.app[GATEWAY].handoff.announce(case)

    async def case(self, case_id: str = "K7") -> Case:
        return await self.cases.get(case_id)

    def card(self, case: Case) -> Dict[str, Any]:
        return next(m for m in self.slack.messages(channel=CHANNEL) if m["ts"] == case.thread_ts)

    def element(self, case: Case, action_id: str) -> Dict[str, Any]:
        for block in self.card(case).get("blocks") or []:
            for el in block.get("elements") or []:
                if el.get("action_id") == action_id:
                    return {**el, "block_id": block.get("block_id")}
        raise AssertionError(f"no {action_id} on the card")

    def thread(self, case: Case) -> str:
        return json.dumps(self.slack.thread(CHANNEL, case.thread_ts), ensure_ascii=False)

    def line_texts(self, user: str = "U1") -> List[str]:
        return [m["message"].get("text") for m in self.line.messages_for(user)]

    async def press(self, case: Case, action_id: str, value: str, user: str = AGENT, **kw: Any):
        return await self.client.press_button(
            action_id, value, user_id=user, channel=CHANNEL, message_ts=case.thread_ts, **kw
        )

    async def opened_view(self, callback_id: str, count: int = 1) -> Dict[str, Any]:
        assert await eventually(lambda: len(self.views(callback_id)) >= count), f"no {callback_id} modal opened"
        return self.views(callback_id)[-1]

    def views(self, callback_id: str) -> List[Dict[str, Any]]:
        return [v for v in self.slack.open_views() if v["view"]["callback_id"] == callback_id]


async def eventually(cond, timeout: float = 5.0) -> bool:
    """Polls `cond` (sync or async) until it holds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if asyncio.iscoroutine(value):
            value = await value
        if value or time.monotonic() > deadline:
            return bool(value)
        await asyncio.sleep(0.03)


@pytest_asyncio.fixture
async def make_desk(emu, agent_bot, slack, tmp_path):  # noqa: F811
    started: List[Desk] = []

    async def make(**overrides: Any) -> Desk:
        cases = MemoryCaseStore()
        settings = settings_for(
            emu,
            agent_bot,
            tmp_path,
            slack_bot_token=TOKEN,
            slack_signing_secret=SIGNING,
            slack_api_base_url=slack.url,
            slack_handoff_channel=CHANNEL,
            agent_approval_key=KEY,
            case_announce_interval_s=60.0,
            **overrides,
        )
        server = TestServer(create_app(settings, store=MemoryEventStore(), cases=cases))
        await server.start_server()
        client = SlackEventsClient(str(server.make_url("/slack/events")), SIGNING, api_emulator_url=slack.url)
        desk = Desk(server, client, cases, slack, emu)
        started.append(desk)
        return desk

    yield make
    for desk in started:
        await desk.client.close()
        await desk.server.close()


@pytest_asyncio.fixture
async def desk(make_desk):
    return await make_desk(slack_supervisor_channel=SUPERVISORS)


# --- the card ---------------------------------------------------------------------------------


def elements(card: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    return {el["action_id"]: el for b in card["blocks"] if b["type"] == "actions" for el in b["elements"]}


def test_the_card_shows_combinations_goodwill_reassign_escalate_and_suggested_replies():
    card = case_card(agent_case())
    assert validate_blocks(card["blocks"]) == []
    controls = elements(card)
    combo = controls["case_approve_combo_0"]
    assert combo["text"]["text"] == "Apply send the item + refund the delivery fee ¥300"
    assert combo["value"] == f"K7|{COMBO}" and combo["confirm"]
    assert controls["case_goodwill"]["text"]["text"] == "Goodwill / お詫び"
    assert controls["case_escalate"]["text"]["text"] == "Escalate / 上長へ"
    assert controls["case_reassign"]["type"] == "users_select"
    assert "担当変更" in controls["case_reassign"]["placeholder"]["text"]
    suggest = controls["case_suggest_reply"]
    assert suggest["type"] == "static_select" and "返信案" in suggest["placeholder"]["text"]
    assert {
        "text": {"type": "plain_text", "text": "Apology + what we'll do / お詫び＋対応のご案内"},
        "value": "K7|apology_with_remedy",
    } in suggest["options"]
    tools = [b for b in card["blocks"] if b["type"] == "actions"][1]
    assert tools["block_id"] == "case_tools|K7"
    # no goodwill kinds for the case: no Goodwill button
    assert "case_goodwill" not in elements(case_card(agent_case(goodwill={})))


def test_the_card_after_a_combination_a_pending_goodwill_an_escalation_and_the_resolve():
    case = agent_case()
    case.approved = [{"remedy": COMBO, "by": "佐藤 花子"}]
    text = json.dumps(case_card(case)["blocks"], ensure_ascii=False)
    assert "Approved / 承認済み: send the item + refund the delivery fee by 佐藤 花子" in text
    assert "case_approve" not in text  # once a remedy is applied, nothing more to apply
    # a goodwill comes on top of a remedy: the remedies can still be applied after one
    case = agent_case()
    case.approved = [{"remedy": "goodwill", "kind": "store_credit", "amount": 500, "by": "佐藤 花子"}]
    card = case_card(case)
    assert "case_approve_combo_0" in elements(card) and "case_goodwill" not in elements(card)
    case = agent_case()
    case.pending_goodwill = {
        "kind": "store_credit",
        "amount": 5000,
        "reason": "二度目の遅配",
        "approvers": [{"slack_user_id": AGENT, "name": "佐藤 花子"}],
    }
    case.escalated_at, case.escalated_by = time.time(), "佐藤 花子"
    card = case_card(case)
    assert elements(card)["case_goodwill_approve"]["text"]["text"] == "Approve goodwill ¥5,000 store credit"
    assert "case_escalate" not in elements(card)
    text = json.dumps(card["blocks"], ensure_ascii=False)
    assert "Escalated* / 上長対応中" in text and "上長承認待ち: store credit ¥5,000" in text
    case.status = "resolved"
    assert not [b for b in case_card(case)["blocks"] if b["type"] == "actions"]


# --- combinations -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_combination_is_applied_through_the_signed_approval_once(desk, agent_bot):
    case = await desk.open_case(agent_case())
    for _ in range(2):  # a double click
        status, _ = await desk.press(case, "case_approve_combo_0", f"K7|{COMBO}")
        assert status == 200
    assert await eventually(lambda: desk.line_texts() == [f"{COMBO} を手配しました。"])
    assert await eventually(lambda: "case_approve" not in json.dumps(desk.card(case)["blocks"]))
    await asyncio.sleep(0.3)
    assert agent_bot.given["U1"] == [COMBO]  # applied once (the bot's idempotent path)
    assert desk.line_texts() == [f"{COMBO} を手配しました。"]
    approved = (await desk.case()).approved
    assert [a["remedy"] for a in approved] == [COMBO]
    assert "send the item + refund the delivery fee by 佐藤 花子" in json.dumps(desk.card(case), ensure_ascii=False)


# --- goodwill -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_goodwill_modal_opens_with_the_trigger_id_and_bad_input_gets_errors(desk, slack):
    case = await desk.open_case(agent_case())
    await desk.press(case, "case_goodwill", "K7")
    click = copy.deepcopy(desk.client.last_payload)
    opened = await desk.opened_view("case_goodwill")
    assert opened["trigger_id"] == click["trigger_id"] and opened["user"] == AGENT
    view = opened["view"]
    assert view["private_metadata"] == "K7" and view["type"] == "modal"
    blocks = {b["block_id"]: b for b in view["blocks"]}
    assert [o["value"] for o in blocks["goodwill_kind"]["element"]["options"]] == ["store_credit", "coupon"]
    amount = blocks["goodwill_amount"]
    assert amount["element"]["type"] == "number_input" and amount["element"]["max_value"] == "10000"
    assert "¥3,000" in amount["hint"]["text"]  # the agent's own limit
    assert blocks["goodwill_reason"]["element"]["multiline"] is True
    for values, block in (
        ({"goodwill_kind": "store_credit", "goodwill_amount": "0", "goodwill_reason": "遅配"}, "goodwill_amount"),
        ({"goodwill_kind": "store_credit", "goodwill_amount": "12.5", "goodwill_reason": "遅配"}, "goodwill_amount"),
        ({"goodwill_kind": "store_credit", "goodwill_amount": "10001", "goodwill_reason": "遅配"}, "goodwill_amount"),
        ({"goodwill_kind": "store_credit", "goodwill_amount": "500", "goodwill_reason": "   "}, "goodwill_reason"),
        ({"goodwill_amount": "500", "goodwill_reason": "遅配"}, "goodwill_kind"),
    ):
        status, answer = await desk.client.submit_view(view["id"], AGENT, values)
        assert status == 200 and answer["response_action"] == "errors", answer
        assert list(answer["errors"]) == [block]
    assert not slack.views[view["id"]]["closed"]  # errors keep the modal open
    assert (await desk.case()).approved == [] and desk.line_texts() == []
    # the same click again (the same trigger id) opens no second modal: Slack exchanges it once
    await desk.client.post_interaction(click)
    assert await eventually(lambda: slack.ephemerals)
    assert "did not open" in slack.ephemerals[-1]["text"]
    assert len(desk.views("case_goodwill")) == 1


@pytest.mark.asyncio
async def test_goodwill_within_the_agents_limit_is_given_once(desk, agent_bot, slack):
    case = await desk.open_case(agent_case())
    await desk.press(case, "case_goodwill", "K7")
    view = (await desk.opened_view("case_goodwill"))["view"]
    values = {"goodwill_kind": "store_credit", "goodwill_amount": 500, "goodwill_reason": "配達が1時間遅れたため"}
    status, answer = await desk.client.submit_view(view["id"], AGENT, values)
    assert (status, answer) == (200, None)  # acked: the modal closes
    assert slack.views[view["id"]]["closed"]
    await desk.client.submit_view(view["id"], AGENT, values)  # the same submission again
    assert await eventually(lambda: desk.line_texts() == ["お詫びとして500円分をお付けしました。"])
    assert await eventually(lambda: "gave goodwill" in desk.thread(case))
    await asyncio.sleep(0.3)
    assert desk.line_texts() == ["お詫びとして500円分をお付けしました。"]
    (given,) = (await desk.case()).approved
    assert (given["remedy"], given["kind"], given["amount"], given["reason"], given["by"]) == (
        "goodwill",
        "store_credit",
        500,
        "配達が1時間遅れたため",
        "佐藤 花子",
    )
    (approval,) = agent_bot.approvals
    assert approval.goodwill.amount == 500 and [a.slack_user_id for a in approval.approvers] == [AGENT]
    card = json.dumps(desk.card(case), ensure_ascii=False)
    assert "Goodwill / お詫び: store credit ¥500 by 佐藤 花子" in card and "case_goodwill" not in card


@pytest.mark.asyncio
async def test_goodwill_above_the_agents_limit_waits_for_the_supervisor(desk, agent_bot):
    case = await desk.open_case(agent_case())
    await desk.press(case, "case_goodwill", "K7")
    view = (await desk.opened_view("case_goodwill"))["view"]
    values = {"goodwill_kind": "store_credit", "goodwill_amount": "5000", "goodwill_reason": "二度目の遅配"}
    assert (await desk.client.submit_view(view["id"], AGENT, values))[1] is None
    assert await eventually(lambda: "a supervisor must approve it too" in desk.thread(case))
    pending = (await desk.case()).pending_goodwill
    assert (pending["kind"], pending["amount"], pending["approvers"]) == (
        "store_credit",
        5000,
        [{"slack_user_id": AGENT, "name": "佐藤 花子"}],
    )
    assert await eventually(
        lambda: "Approve goodwill ¥5,000 store credit" in json.dumps(desk.card(case), ensure_ascii=False)
    )
    assert desk.line_texts() == []  # nothing given yet
    for _ in range(2):  # the supervisor double-clicks
        await desk.press(case, "case_goodwill_approve", "K7", user=SUPERVISOR)
    assert await eventually(lambda: desk.line_texts() == ["お詫びとして5,000円分をお付けしました。"])
    await asyncio.sleep(0.3)
    assert desk.line_texts() == ["お詫びとして5,000円分をお付けしました。"]
    last = agent_bot.approvals[1]
    assert [a.slack_user_id for a in last.approvers] == [AGENT, SUPERVISOR]
    assert (last.goodwill.kind, last.goodwill.amount, last.goodwill.reason) == ("store_credit", 5000, "二度目の遅配")
    case_now = await desk.case()
    assert case_now.pending_goodwill is None and case_now.approved[0]["by"] == "佐藤 花子, Alex Kim"


@pytest.mark.asyncio
async def test_a_non_member_can_neither_open_nor_submit_the_goodwill_modal(desk, agent_bot, slack):
    case = await desk.open_case(agent_case())
    await desk.press(case, "case_goodwill", "K7", user=OUTSIDER)
    assert await eventually(lambda: slack.ephemerals)
    assert "Only members" in json.dumps(slack.ephemerals[-1], ensure_ascii=False)
    await asyncio.sleep(0.2)
    assert desk.views("case_goodwill") == []
    # a modal an agent opened, submitted by someone outside the channel
    await desk.press(case, "case_goodwill", "K7")
    view = (await desk.opened_view("case_goodwill"))["view"]
    values = {"goodwill_kind": "store_credit", "goodwill_amount": "500", "goodwill_reason": "遅配"}
    status, answer = await desk.client.submit_view(view["id"], OUTSIDER, values)
    assert status == 200 and answer["response_action"] == "errors"
    assert "Only members" in json.dumps(answer["errors"])
    await asyncio.sleep(0.3)
    now = await desk.case()
    assert (now.status, now.approved, now.pending_goodwill) == ("open", [], None)
    assert agent_bot.approvals == [] and desk.line_texts() == []


# --- reassign and escalate ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_reassign_hands_the_case_to_a_member_and_refuses_anyone_else(desk, slack):
    case = await desk.open_case(agent_case())
    await desk.press(case, "case_claim", "K7")
    assert await eventually(lambda: "佐藤 花子 claimed" in desk.thread(case))
    block_id = desk.element(case, "case_reassign")["block_id"]
    await desk.client.select_user(
        "case_reassign", SUPERVISOR, user_id=AGENT, channel=CHANNEL, message_ts=case.thread_ts, block_id=block_id
    )
    assert await eventually(lambda: f"↪ 佐藤 花子 reassigned this case to <@{SUPERVISOR}>" in desk.thread(case))
    now = await desk.case()
    assert (now.status, now.agent_id, now.agent_name) == ("claimed", SUPERVISOR, "Alex Kim")
    assert f"Claimed by <@{SUPERVISOR}>" in json.dumps(desk.card(case)["blocks"])
    # the new agent's replies reach the customer
    await desk.client.thread_reply(CHANNEL, case.thread_ts, SUPERVISOR, "担当のAlexです。")
    assert await eventually(lambda: desk.line_texts() == ["担当のAlexです。"])
    # someone outside the handoff channel cannot be given the case
    await desk.client.select_user(
        "case_reassign", OUTSIDER, user_id=SUPERVISOR, channel=CHANNEL, message_ts=case.thread_ts, block_id=block_id
    )
    assert await eventually(lambda: slack.ephemerals)
    assert "not a member of the handoff channel" in slack.ephemerals[-1]["text"]
    assert (await desk.case()).agent_id == SUPERVISOR
    # nor can someone outside it reassign
    await desk.client.select_user(
        "case_reassign", AGENT, user_id=OUTSIDER, channel=CHANNEL, message_ts=case.thread_ts, block_id=block_id
    )
    assert await eventually(lambda: len(slack.ephemerals) == 2)
    await asyncio.sleep(0.2)
    assert (await desk.case()).agent_id == SUPERVISOR


@pytest.mark.asyncio
async def test_escalate_posts_once_to_the_supervisors_channel(desk, slack):
    case = await desk.open_case(agent_case())
    await desk.press(case, "case_escalate", "K7")
    assert await eventually(lambda: "⬆ escalated to supervisors by 佐藤 花子" in desk.thread(case))
    await desk.press(case, "case_escalate", "K7", user=SUPERVISOR)
    assert await eventually(lambda: slack.ephemerals)
    assert "already escalated" in slack.ephemerals[-1]["text"]
    posted = slack.messages(channel=SUPERVISORS)
    assert len(posted) == 1
    text = json.dumps(posted[0], ensure_ascii=False)
    assert "佐藤 花子* escalated case K7" in text and "別卵 ¥80" in text and "デモ 太郎" in text
    assert f"archives/{CHANNEL}/p{case.thread_ts.replace('.', '')}" in text  # the permalink
    assert case.thread_ts in text and "case_claim" not in text  # where, and no buttons
    card = json.dumps(desk.card(case)["blocks"], ensure_ascii=False)
    assert "Escalated* / 上長対応中" in card and "case_escalate" not in card
    assert (await desk.case()).escalated_by == "佐藤 花子"


@pytest.mark.asyncio
async def test_without_a_supervisors_channel_the_thread_broadcasts_to_the_supervisors(make_desk, slack):
    desk = await make_desk(slack_supervisor_ids=(SUPERVISOR,))
    case = await desk.open_case(agent_case())
    await desk.press(case, "case_escalate", "K7")
    assert await eventually(lambda: "⬆ escalated to supervisors" in desk.thread(case))
    broadcast = [m for m in slack.thread(CHANNEL, case.thread_ts) if m.get("subtype") == "thread_broadcast"]
    assert len(broadcast) == 1 and broadcast[0]["text"].startswith(f"<@{SUPERVISOR}> ⬆ 佐藤 花子 escalated")


# --- suggested replies ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_suggested_reply_opens_prefilled_and_reaches_the_customer_once(desk, slack):
    case = await desk.open_case(agent_case())
    await desk.client.select_option(
        "case_suggest_reply",
        "K7|apology_with_remedy",
        user_id=AGENT,
        channel=CHANNEL,
        message_ts=case.thread_ts,
        block_id="case_tools|K7",
        message=desk.card(case),
    )
    assert desk.client.last_payload["actions"][0]["selected_option"]["text"]["text"].startswith("Apology")
    view = (await desk.opened_view("case_reply_draft"))["view"]
    assert view["private_metadata"] == "K7"
    prefilled = view["blocks"][1]["element"]["initial_value"]
    assert prefilled.startswith("デモ 太郎様、このたびはご注文（1001）の件で")
    assert "送る商品をお届けします" not in prefilled and "商品を届ける" in prefilled  # the offered remedy, in Japanese
    assert "担当の佐藤 花子が" in prefilled
    edited = prefilled + "\n本日中にご連絡します。"
    for _ in range(2):  # submitted twice (a double click / Slack's retry): sent once
        status, answer = await desk.client.submit_view(view["id"], AGENT, {"reply_text": edited})
        assert (status, answer) == (200, None)
    assert await eventually(lambda: desk.line_texts() == [edited])
    assert await eventually(lambda: "suggested reply, sent to the customer" in desk.thread(case))
    await asyncio.sleep(0.3)
    assert desk.line_texts() == [edited]
    assert desk.thread(case).count("suggested reply, sent") == 1
    assert "本日中にご連絡します。" in desk.thread(case)
    now = await desk.case()
    assert (now.status, now.agent_id, now.relayed["to_customer"]) == ("claimed", AGENT, 1)


@pytest.mark.asyncio
async def test_a_suggested_reply_is_in_english_for_an_english_customer_and_blank_text_is_refused(desk):
    case = agent_case()
    case.context["customer"] = {**case.context["customer"], "display_name": "Emma", "language": "en"}
    case = await desk.open_case(case)
    await desk.client.select_option(
        "case_suggest_reply",
        "K7|ask_for_photo",
        user_id=AGENT,
        channel=CHANNEL,
        message_ts=case.thread_ts,
        block_id="case_tools|K7",
    )
    view = (await desk.opened_view("case_reply_draft"))["view"]
    assert view["blocks"][1]["element"]["initial_value"].startswith("Emma, sorry for the inconvenience.")
    status, answer = await desk.client.submit_view(view["id"], AGENT, {"reply_text": "  "})
    assert answer["response_action"] == "errors" and list(answer["errors"]) == ["reply_text"]
    status, answer = await desk.client.submit_view(view["id"], OUTSIDER, {})
    assert answer["response_action"] == "errors"
    await asyncio.sleep(0.3)
    assert desk.line_texts() == []
    # left as prefilled, it goes out as it is
    assert (await desk.client.submit_view(view["id"], AGENT, {}))[1] is None
    assert await eventually(lambda: desk.line_texts() and desk.line_texts()[0].startswith("Emma, sorry"))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "view",
    [
        5,
        "callback_id",
        {"id": "V1"},
        {"callback_id": 7, "type": "modal"},
        {"callback_id": "case_goodwill", "state": 3, "blocks": 2},
        {"callback_id": "case_goodwill", "type": "modal", "state": 3, "blocks": 2, "private_metadata": []},
        {"callback_id": "case_reply_draft", "type": "modal", "state": {"values": []}, "id": 5},
        {"callback_id": "case_goodwill", "type": "modal", "private_metadata": "K7", "state": {"values": ["x"]}},
        {"callback_id": "case_goodwill", "type": "modal", "private_metadata": "K7", "state": 3, "blocks": 4},
        {
            "callback_id": "case_reply_draft",
            "type": "modal",
            "private_metadata": "K7",
            "state": {"values": {"reply_text": 1}},
        },
    ],
)
async def test_a_signed_submission_that_is_no_view_of_ours_changes_nothing(desk, agent_bot, view):
    case = await desk.open_case(agent_case())
    payload = {"type": "view_submission", "user": {"id": AGENT}, "team": {"id": "T0000000001"}, "view": view}
    status, _ = await desk.client.post_interaction(payload)
    assert status == 200
    await asyncio.sleep(0.2)
    assert (await desk.case()).approved == [] and agent_bot.approvals == []
    assert len(desk.slack.thread(CHANNEL, case.thread_ts)) == 2  # the card and its transcript


def test_the_card_says_who_applied_what_and_when_in_the_shops_zone():
    case = agent_case()
    applied_at = datetime(2026, 12, 1, 9, 4, tzinfo=timezone.utc).timestamp()  # 18:04 in Tokyo
    case.approved = [{"remedy": COMBO, "by": "佐藤 花子", "at": applied_at}]
    text = json.dumps(case_card(case)["blocks"], ensure_ascii=False)
    assert "send the item + refund the delivery fee by 佐藤 花子 (12-01 18:04 JST)" in text
