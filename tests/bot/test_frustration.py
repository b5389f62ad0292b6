"""The frustration score: each signal, decay and threshold (bot/frustration.py); the words
it finds (bot/components/frustration_signals.py on real Messages); the policy that hands
off (bot/components/frustration_policy.py on real DialogueStateTrackers); and what the
agent sees (bot/actions/handoff.py on real rasa-sdk Trackers)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml
from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble
from rasa.core.policies.policy import PolicyPrediction
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    ConversationPaused,
    Event,
    SessionStarted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.training_data.message import Message
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.handoff import ActionHandoff, summary_line
from bot.components.frustration_policy import FrustrationPolicy
from bot.components.frustration_signals import (
    FrustrationSignals,
    LexiconError,
    load_lexicon,
    shouting,
)
from bot.components.japanese_tokenizer import JapaneseTokenizer
from bot.frustration import assess, comparable, current_session, similarity
from bot.remedy_policy import load_policy
from bot.remedy_policy.types import FrustrationSettings
from contracts.case_context import CaseContext

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_DICT = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
SETTINGS = load_policy().frustration  # the shipped bot/remedy_policy.yml
DEMO = "U00000000000000000000000000000001"
T0 = 1764000000.0


# --- events as the Rasa tracker holds them (dict form) ------------------------------------
def user(
    text: str,
    intent: str = "inform",
    confidence: float = 0.9,
    signals=None,
    at: float = 0.0,
    ranking: Optional[List[Dict[str, Any]]] = None,
) -> Dict[str, Any]:
    parse = {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "intent_ranking": ranking or [{"name": intent, "confidence": confidence}],
        "entities": [],
        "frustration_signals": signals or [],
    }
    return {"event": "user", "text": text, "parse_data": parse, "timestamp": T0 + at}


def bot(response: str, text: str = "…", at: float = 0.0) -> Dict[str, Any]:
    return {"event": "bot", "text": text, "metadata": {"utter_action": response}, "timestamp": T0 + at}


def slot(name: str, value: Any) -> Dict[str, Any]:
    return {"event": "slot", "name": name, "value": value}


def listen() -> Dict[str, Any]:
    return {"event": "action", "name": "action_listen"}


def angry(word: str = "最悪", weight: float = 1.0) -> Dict[str, Any]:
    return {"signal": "angry_word", "text": word, "weight": weight}


def approx(value: float):
    return pytest.approx(value, abs=1e-3)  # weights are rounded to 3 decimals


def reasons(assessment) -> Dict[str, float]:
    return {r["signal"]: r["weight"] for r in assessment.reasons}


# --- scoring ------------------------------------------------------------------------------
def test_the_shipped_settings_come_from_policy_yml():
    assert SETTINGS.threshold == 1.0
    assert SETTINGS.weight("angry_word") == 0.45 and SETTINGS.weight("repeated_message") == 0.5
    assert SETTINGS.decay == 0.5


def test_a_calm_conversation_scores_nothing():
    events = [
        user("親子丼に別卵が付いていませんでした", "report_missing_item", 0.97),
        bot("utter_choose_order"),
        listen(),
        user('/inform{"order_id": "1001"}', at=20),
    ]
    result = assess(events, SETTINGS)
    assert result.score == 0 and result.reasons == [] and not result.hand_off
    assert result.threshold == 1.0


def test_intents_count_by_confidence_even_when_another_intent_won():
    ranking = [
        {"name": "report_late_delivery", "confidence": 0.55},
        {"name": "express_frustration", "confidence": 0.4},
        {"name": "request_human", "confidence": 0.05},
    ]
    result = assess([user("まだ来ないの", "report_late_delivery", 0.55, ranking=ranking)], SETTINGS)
    assert reasons(result) == {"express_frustration": approx(0.8 * 0.4)}  # 0.05 is noise


def test_the_classifiers_guess_on_nonsense_is_not_frustration():
    # "ぴよぴよぽぽぽ" read as express_frustration at 0.999 came near the threshold alone
    ranking = [{"name": "nlu_fallback", "confidence": 0.45}, {"name": "express_frustration", "confidence": 0.999}]
    mash = user(
        "ぴよぴよぽぽぽ ふがふが",
        "nlu_fallback",
        0.45,
        ranking=ranking,
        signals=[{"signal": "shouting", "text": "ぽぽぽ", "weight": 0.4}],
    )
    mash["parse_data"]["unfamiliar_input"] = True
    result = assess([mash], SETTINGS)
    assert "express_frustration" not in reasons(result) and not result.hand_off
    del mash["parse_data"]["unfamiliar_input"]
    assert reasons(assess([mash], SETTINGS))["express_frustration"] == approx(0.8 * 0.999)  # unmarked


def test_angry_words_add_up_and_an_intensifier_multiplies_them():
    one = assess([user("最悪", signals=[angry()])], SETTINGS)
    assert reasons(one)["angry_word"] == approx(0.45)
    signals = [angry(), angry("ふざけ", 1.5), {"signal": "intensifier", "text": "本当に", "weight": 1.0}]
    strong = assess([user("本当に最悪、ふざけるな", signals=signals)], SETTINGS)
    assert reasons(strong)["angry_word"] == approx(0.45 * 2.0 * 1.5)  # capped at 2 words' worth
    assert strong.hand_off
    detail = next(r["detail"] for r in strong.reasons if r["signal"] == "angry_word")
    assert "最悪" in detail and "本当に" in detail


def test_an_intensifier_alone_is_nothing():
    result = assess(
        [user("本当にありがとう", signals=[{"signal": "intensifier", "text": "本当に", "weight": 1}])], SETTINGS
    )
    assert result.score == 0


def test_shouting_counts_and_is_capped():
    loud = [
        {"signal": "shouting", "text": t, "weight": w}
        for t, w in (("WHERE", 1.0), ("!!", 0.6), ("??", 0.6), ("ーーー", 0.4))
    ]
    result = assess([user("WHERE IS IT!!??", signals=loud)], SETTINGS)
    assert reasons(result)["shouting"] == approx(0.3 * 2.0)


def test_earlier_messages_decay_so_the_trend_counts():
    events = [
        user("最悪", signals=[angry()]),
        bot("utter_clarify"),
        listen(),
        user("最悪", signals=[angry()], at=30),
        bot("utter_clarify"),
        listen(),
        user("はい", "affirm", at=60),
    ]
    result = assess(events, SETTINGS)
    # the previous message at half, the one before at a quarter
    assert reasons(result)["angry_word"] == approx(0.45 * 0.5 + 0.45 * 0.25)
    calmer = assess(events + [listen(), user("ok", "affirm", at=70)], SETTINGS)
    assert reasons(calmer)["angry_word"] == approx(0.45 * 0.25)  # the older one is past decay_turns
    gone = assess(events + [listen(), user("ok", "affirm", at=70), listen(), user("ok", "affirm", at=80)], SETTINGS)
    assert "angry_word" not in reasons(gone)  # older than decay_turns


def test_repeated_and_near_repeated_messages():
    assert similarity(comparable("卵が入ってない！"), comparable("卵が入ってない")) == 1.0
    assert similarity(comparable("卵が入ってない"), comparable("だから卵が入ってないって")) >= 0.8
    assert similarity(comparable("ポテトが冷めていた"), comparable("注文番号を教えて")) < 0.5
    events = [user("卵が入ってないんだけど"), listen(), user("卵が入ってないんだけど！", at=20)]
    once = assess(events, SETTINGS)
    assert reasons(once)["repeated_message"] == 0.5 and not once.hand_off
    twice = assess(events + [listen(), user("だから卵が入ってないんだけど", at=40)], SETTINGS)
    assert reasons(twice)["repeated_message"] == 1.0 and twice.hand_off


def test_short_answers_and_button_taps_are_never_repeats():
    events = [user("はい", "affirm"), listen(), user("はい", "affirm"), listen(), user("はい", "affirm")]
    assert assess(events, SETTINGS).score == 0
    tap = '/inform{"remedy": "refund_item"}'
    assert assess([user(tap), listen(), user(tap), listen(), user(tap)], SETTINGS).score == 0


def test_consecutive_misunderstandings_count_from_the_second():
    one = [user("asdf", "nlu_fallback", 0.45)]
    assert assess(one, SETTINGS).score == 0
    two = one + [bot("utter_clarify"), listen(), user("明日の天気は", "out_of_scope", at=10)]
    assert reasons(assess(two, SETTINGS)) == {"consecutive_fallbacks": 0.4}
    # Inside the form the bot says it did not understand the answer: that counts too.
    form = [user("1234567"), bot("utter_order_not_understood"), listen(), user("えっと", "nlu_fallback", 0.4, at=5)]
    assert reasons(assess(form, SETTINGS)) == {"consecutive_fallbacks": 0.4}
    understood = two + [bot("utter_out_of_scope"), listen(), user("別卵がない", "report_missing_item", at=20)]
    assert "consecutive_fallbacks" not in reasons(assess(understood, SETTINGS))


def test_every_remedy_refused():
    offers = {"remedies": [{"kind": "send_item", "amount": 0}, {"kind": "refund_item", "amount": 80}]}
    events = [
        user("別卵がない", "report_missing_item"),
        slot("offers", offers),
        listen(),
        user("/deny", "deny", 1.0),
        slot("refused_remedies", ["send_item", "refund_item"]),
    ]
    assert reasons(assess(events, SETTINGS)) == {"all_remedies_refused": 0.6}
    partly = events[:-1] + [slot("refused_remedies", ["send_item"])]
    assert assess(partly, SETTINGS).score == 0


def test_slots_carried_over_from_an_earlier_session_do_not_count():
    offers = {"remedies": [{"kind": "refund_item", "amount": 80}]}
    events = [
        {"event": "session_started"},
        slot("offers", offers),
        slot("refused_remedies", ["refund_item"]),
        listen(),
        user("こんにちは", "greet"),
    ]
    assert assess(events, SETTINGS).score == 0


def test_time_without_progress():
    events = [user("まだ届きません", "report_late_delivery"), listen(), user("まだですか", "inform", at=15 * 60)]
    result = assess(events, SETTINGS)
    assert reasons(result)["no_progress"] == approx(0.3 * 1.5)
    assert assess(events, SETTINGS, now=T0 + 60 * 60).reasons[0]["weight"] == approx(0.6)  # at most twice
    progressed = [events[0], bot("utter_remedy_applied"), listen(), events[2]]
    assert "no_progress" not in reasons(assess(progressed, SETTINGS))


def test_only_the_current_session_counts():
    old = [user("最悪", signals=[angry()]), listen(), user("最悪", signals=[angry()])]
    for boundary in ("session_started", "restart", "resume"):
        events = old + [{"event": boundary}, listen(), user("こんにちは", "greet")]
        assert assess(events, SETTINGS).score == 0
        assert current_session(events)[-1]["text"] == "こんにちは"


def test_intents_the_gateway_triggers_are_not_the_customers_words():
    external = {
        "event": "user",
        "text": "EXTERNAL: EXTERNAL_agent_resolved",
        "timestamp": T0 + 3600,
        "parse_data": {"intent": {"name": "EXTERNAL_agent_resolved"}},
        "metadata": {"is_external": True},
    }
    events = [user("最悪", signals=[angry()]), listen(), external]
    result = assess(events, SETTINGS)
    assert reasons(result) == {"angry_word": 0.45}  # still the customer's latest words, not decayed
    assert "no_progress" not in reasons(result)  # the trigger's time is not the customer waiting


def test_messages_taken_back_do_not_count():
    events = [user("最悪", signals=[angry()]), {"event": "rewind"}, listen(), user("こんにちは", "greet")]
    assert assess(events, SETTINGS).score == 0
    undone = [user("a", "greet"), {"event": "action", "name": "utter_greet"}, {"event": "undo"}]
    assert [e["event"] for e in current_session(undone)] == ["user"]


def test_the_threshold_and_weights_come_from_the_settings():
    events = [user("最悪", signals=[angry()])]
    assert not assess(events, SETTINGS).hand_off
    strict = FrustrationSettings(threshold=0.4)
    assert assess(events, strict).hand_off and assess(events, strict).threshold == 0.4
    heavier = FrustrationSettings(weights=(("angry_word", 2.0),))
    assert assess(events, heavier).score == 2.0


def test_reasons_are_strongest_first_and_serialisable():
    events = [
        user("最悪", signals=[angry()]),
        listen(),
        user("最悪!!", signals=[angry(), {"signal": "shouting", "text": "!!", "weight": 0.6}], at=5),
    ]
    result = assess(events, SETTINGS)
    weights = [r["weight"] for r in result.reasons]
    assert weights == sorted(weights, reverse=True)
    assert set(result.as_dict()) == {"score", "threshold", "reasons"}
    assert all(set(r) == {"signal", "weight", "detail"} for r in result.reasons)


# --- the words: lexicon and NLU component ---------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer() -> JapaneseTokenizer:
    return JapaneseTokenizer(JapaneseTokenizer.get_default_config())


@pytest.fixture(scope="module")
def component() -> FrustrationSignals:
    return FrustrationSignals(load_lexicon())


def signals_of(tokenizer, component, text: str) -> List[Dict[str, Any]]:
    message = Message(data={"text": text, "intent": {"name": "inform", "confidence": 0.8}})
    tokenizer.process([message])
    component.process([message])
    assert message.get("intent")["name"] == "inform"  # the component changes no intent
    return message.get("frustration_signals")


def kinds(signals) -> Dict[str, List[str]]:
    found: Dict[str, List[str]] = {}
    for s in signals:
        found.setdefault(s["signal"], []).append(s["text"])
    return found


@pytest.mark.parametrize(
    "text, signal, word",
    [
        ("ほんと最悪なんだけど", "angry_word", "最悪"),
        ("さいあく", "angry_word", "さいあく"),
        ("サイアク", "angry_word", "さいあく"),  # katakana folds to hiragana
        ("ｻｲｱｸ", "angry_word", "さいあく"),  # half-width katakana too
        ("マジでムカつく", "angry_word", "むかつ"),
        ("バカにしてるの？", "angry_word", "馬鹿"),  # through the lemma
        ("ずっと待ってるんですけど", "desperate_word", "ずっと待"),
        ("本当に困っています", "desperate_word", "困っ"),
        ("This is RIDICULOUS", "angry_word", "ridiculous"),
        ("I'm so annoyed", "angry_word", "annoy"),  # at a word start
        ("please help, nothing has come", "desperate_word", "please help"),
        ("wtf", "angry_word", "wtf"),
        ("😡", "angry_word", "😡"),
    ],
)
def test_lexicon_words_are_found(tokenizer, component, text, signal, word):
    assert word in kinds(signals_of(tokenizer, component, text)).get(signal, [])


@pytest.mark.parametrize(
    "text",
    [
        "卵だけが入っていませんでした",
        "ばかりで",  # ばか only as a whole word
        "I made a mistake with the address",  # mad only as a whole word
        "LINEで注文しました",  # a capitalised name is not shouting
        "ありがとうございました〜〜",
        "my order is missing the fries",
        "wwwww",
    ],
)
def test_ordinary_messages_have_no_signals(tokenizer, component, text):
    assert signals_of(tokenizer, component, text) == []


def test_each_word_counts_once_and_overlaps_go_to_the_longest(tokenizer, component):
    found = kinds(signals_of(tokenizer, component, "さいあく、さいあく"))
    assert found == {"angry_word": ["さいあく"]}  # not also its lemma 最悪, not twice
    assert kinds(signals_of(tokenizer, component, "ずっと待ってる")) == {"desperate_word": ["ずっと待"]}


def test_intensifiers_are_found(tokenizer, component):
    found = kinds(signals_of(tokenizer, component, "マジで最悪"))
    assert found["intensifier"] == ["まじ"] and found["angry_word"] == ["最悪"]
    assert "so" in kinds(signals_of(tokenizer, component, "this is so useless"))["intensifier"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("WHERE IS MY FOOD", ["WHERE IS MY FOOD"]),
        ("まだですか！！", ["!!"]),
        ("まだ？？", ["??"]),
        ("why?!", ["?!"]),
        ("はやくーーーー", ["ーーーー"]),
        ("nooooo", ["ooooo"]),
        ("ok", []),
        ("OK", []),  # too short to be shouting
        ("注文番号は1001です", []),
        ("まだですか？", []),
    ],
)
def test_shouting(text, expected):
    assert [s["text"] for s in shouting(text)] == expected


def test_lexicon_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "frustration_lexicon.yml"
    cases = [
        (
            "angry:\n  ja:\n    - 最悪\n  en:\n    - \ndesperate:\n  ja: [困]\nintensifiers:\n  ja: [本当に]\n",
            r"frustration_lexicon.yml:5: angry.en: each entry must be a non-empty word",
        ),
        ("angry:\n  fr:\n    - merde\n", r"frustration_lexicon.yml:2: angry.fr: unknown language"),
        (
            "angry:\n  ja: [最悪]\ndesperate:\n  ja:\n    - {word: 困, weight: lots}\nintensifiers:\n  ja: [本当に]\n",
            r"frustration_lexicon.yml:5: desperate.ja: weight must be a number",
        ),
        (
            "angry:\n  ja:\n    - さいあく\ndesperate:\n  ja:\n    - サイアク\nintensifiers:\n  ja: [本当に]\n",
            r"frustration_lexicon.yml:6: desperate.ja: 'サイアク' is already listed on line 3",
        ),
        ("angry:\n  ja: [最悪]\ndesperate:\n  ja: [困]\n", r"frustration_lexicon.yml:1: intensifiers: missing section"),
        ("angry:\n  ja: [最悪]\nangery:\n  ja: [x]\n", r"frustration_lexicon.yml:3: angery: unknown section"),
        ("angry:\n  en:\n    - 😡\n", r"frustration_lexicon.yml:3: angry.en: .* no letters"),
        ("angry: [unclosed\n", r"frustration_lexicon.yml:\d+: not valid YAML"),
    ]
    for text, message in cases:
        path.write_text(text, encoding="utf-8")
        with pytest.raises(LexiconError, match=message):
            load_lexicon(path)


def test_the_shipped_lexicon_loads_with_both_languages():
    lexicon = load_lexicon()
    languages = {(e.signal, e.language) for e in lexicon.entries}
    for signal in ("angry_word", "desperate_word", "intensifier"):
        assert (signal, "ja") in languages and (signal, "en") in languages


def test_the_component_is_created_from_its_config(tmp_path):
    path = tmp_path / "lexicon.yml"
    path.write_text("angry:\n  en: [grr]\ndesperate:\n  en: [help]\nintensifiers:\n  en: [very]\n", encoding="utf-8")
    created = FrustrationSignals.create({"lexicon": str(path)}, None, None, None)
    assert kinds(created.signals("grr")) == {"angry_word": ["grr"]}


# --- the policy on real trackers --------------------------------------------------------------
@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "domain.yml"))


def make_policy(tmp_path, **config) -> FrustrationPolicy:
    (tmp_path / "storage").mkdir(exist_ok=True)
    storage = LocalModelStorage(tmp_path / "storage")
    context = ExecutionContext(GraphSchema({}), "test")
    return FrustrationPolicy.create(
        {**FrustrationPolicy.get_default_config(), **config}, storage, Resource("frustration"), context
    )


def uttered(text: str, intent: str = "inform", signals=None, at: float = 0.0, confidence: float = 0.9) -> UserUttered:
    parse = {"intent_ranking": [{"name": intent, "confidence": confidence}], "frustration_signals": signals or []}
    return UserUttered(text, {"name": intent, "confidence": confidence}, [], parse, timestamp=T0 + at)


def rasa_tracker(domain, *turns: Event) -> DialogueStateTracker:
    events: List[Event] = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")]
    events += turns
    return DialogueStateTracker.from_events("customer", events, domain.slots)


ANGRY_REPEATS = [
    "卵が入ってないんだけど最悪",
    "卵が入ってないんだけど！！最悪",
]


def angry_conversation(domain, loop: bool = True, last_intent: str = "inform", last_text: Optional[str] = None):
    turns: List[Event] = [uttered(ANGRY_REPEATS[0], "report_missing_item", [angry()])]
    turns += [ActionExecuted("action_start_claim"), ActionExecuted("claim_form")]
    if loop:
        turns.append(ActiveLoop("claim_form"))
    turns += [
        BotUttered("どのご注文ですか？", metadata={"utter_action": "utter_choose_order"}),
        ActionExecuted("action_listen"),
    ]
    turns.append(
        uttered(
            last_text or ANGRY_REPEATS[1],
            last_intent,
            [angry(), {"signal": "shouting", "text": "!!", "weight": 0.6}],
            at=30,
        )
    )
    return rasa_tracker(domain, *turns)


def test_the_policy_hands_off_when_the_score_reaches_the_threshold(tmp_path, domain):
    policy = make_policy(tmp_path)
    prediction = policy.predict_action_probabilities(angry_conversation(domain), domain)
    best = max(range(len(prediction.probabilities)), key=prediction.probabilities.__getitem__)
    assert domain.action_names_or_texts[best] == "action_handoff"
    assert prediction.probabilities[best] == 1.0
    assert prediction.policy_priority > 4  # above RulePolicy (RULE_POLICY_PRIORITY)
    frustration = prediction.diagnostic_data["frustration"]
    assert frustration["score"] >= frustration["threshold"]
    assert {"angry_word", "repeated_message"} <= {r["signal"] for r in frustration["reasons"]}


def test_the_policy_sees_every_message_inside_a_form(tmp_path, domain):
    # Rasa's `applied_events()` folds a form's turns together; the score must not lose the
    # customer's messages in between (three repeats, the last one angry).
    turns: List[Event] = [
        uttered("別卵が入ってないんだけど", "report_missing_item"),
        ActionExecuted("action_start_claim"),
        ActionExecuted("claim_form"),
        ActiveLoop("claim_form"),
        ActionExecuted("action_listen"),
    ]
    for n, text in enumerate(["別卵が入ってないんだけど！", "だから別卵が入ってないんだけど！最悪"], start=1):
        turns.append(uttered(text, "report_missing_item", [angry()] if n == 2 else [], at=10 * n))
        if n == 1:
            turns += [ActionExecuted("claim_form"), ActionExecuted("action_listen")]
    prediction = make_policy(tmp_path).predict_action_probabilities(rasa_tracker(domain, *turns), domain)
    assert max(prediction.probabilities) == 1.0
    repeats = next(r for r in prediction.diagnostic_data["frustration"]["reasons"] if r["signal"] == "repeated_message")
    assert repeats["weight"] == 1.0  # both earlier messages


def test_the_policy_wins_over_an_active_form(tmp_path, domain):
    policy = make_policy(tmp_path)
    tracker = angry_conversation(domain)
    ours = policy.predict_action_probabilities(tracker, domain)
    form = [0.0] * domain.num_actions
    form[domain.index_for_action("claim_form")] = 1.0
    loop = PolicyPrediction(form, "RulePolicy", 4, is_no_user_prediction=True)
    best = DefaultPolicyPredictionEnsemble._pick_best_policy([loop, ours])
    assert best.policy_name == "FrustrationPolicy"


def test_the_policy_abstains_below_the_threshold(tmp_path, domain):
    policy = make_policy(tmp_path)
    calm = rasa_tracker(domain, uttered("親子丼に別卵が付いていませんでした", "report_missing_item"))
    prediction = policy.predict_action_probabilities(calm, domain)
    assert max(prediction.probabilities) == 0.0 and not prediction.is_no_user_prediction


@pytest.mark.parametrize(
    "case",
    ["rule_intent", "button", "paused", "not_after_a_message", "external"],
)
def test_the_policy_leaves_alone_what_others_handle(tmp_path, domain, case):
    policy = make_policy(tmp_path)
    if case == "rule_intent":  # the rule hands off with its own reason
        tracker = angry_conversation(domain, last_intent="express_frustration")
    elif case == "button":
        tracker = angry_conversation(domain, last_text='/inform{"order_id": "1001"}')
    elif case == "paused":
        tracker = angry_conversation(domain)
        tracker.update(ConversationPaused())
    elif case == "external":  # the gateway triggered an intent: an agent acted
        tracker = angry_conversation(domain)
        tracker.update(ActionExecuted("action_listen"))
        tracker.update(UserUttered.create_external("EXTERNAL_agent_resolved"))
        policy.settings = FrustrationSettings(threshold=0.01)  # would fire on anything else
    else:
        tracker = angry_conversation(domain)
        tracker.update(ActionExecuted("claim_form"))
    assert max(policy.predict_action_probabilities(tracker, domain).probabilities) == 0.0


def test_the_policy_reads_its_settings_from_the_policy_file(tmp_path, domain):
    shipped = (ROOT / "bot" / "remedy_policy.yml").read_text(encoding="utf-8")
    lenient = tmp_path / "remedy_policy.yml"
    lenient.write_text(shipped.replace("  threshold: 1.0", "  threshold: 9.5"), encoding="utf-8")
    policy = make_policy(tmp_path, policy_file=str(lenient))
    assert policy.settings.threshold == 9.5
    assert max(policy.predict_action_probabilities(angry_conversation(domain), domain).probabilities) == 0.0


def test_the_policy_trains_and_loads_without_learning_anything(tmp_path, domain):
    policy = make_policy(tmp_path)
    resource = policy.train([], domain)
    loaded = FrustrationPolicy.load(
        {**FrustrationPolicy.get_default_config()},
        policy._model_storage,
        resource,
        ExecutionContext(GraphSchema({}), "test"),
    )
    assert max(loaded.predict_action_probabilities(angry_conversation(domain), domain).probabilities) == 1.0


# --- the handoff the agent sees (rasa-sdk Trackers, SQLite orders) ----------------------------
def sdk_tracker(events: List[Dict[str, Any]], active_loop: Optional[str] = None, slots=None) -> Tracker:
    latest = next(e for e in reversed(events) if e["event"] == "user")["parse_data"]
    return Tracker(
        DEMO,
        {"language": "ja", "failed_attempts": 0, **(slots or {})},
        latest,
        events,
        False,
        None,
        {"name": active_loop} if active_loop else {},
        "action_listen",
    )


def run_handoff(t: Tracker):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionHandoff().run(dispatcher, t, DOMAIN_DICT))
    case = next(m["custom"]["handoff"] for m in dispatcher.messages if m.get("custom"))
    return dispatcher.messages, events, case


def angry_repeats_as_dicts() -> List[Dict[str, Any]]:
    return [
        {"event": "session_started"},
        listen(),
        user("卵が入ってないんだけど最悪", "report_missing_item", signals=[angry()]),
        bot("utter_choose_order", "どのご注文ですか？"),
        listen(),
        user(
            "卵が入ってないんだけど！！最悪",
            signals=[angry(), {"signal": "shouting", "text": "!!", "weight": 0.6}],
            at=30,
        ),
    ]


def test_a_handoff_by_the_frustration_policy_has_the_score_and_reasons(orders_db):
    messages, events, case = run_handoff(
        sdk_tracker(angry_repeats_as_dicts(), active_loop="claim_form", slots={"problem": "missing_item"})
    )
    assert case["reason"] == "frustration"
    assert messages[0]["response"] == "utter_handoff_frustration"
    frustration = case["frustration"]
    assert frustration["score"] >= frustration["threshold"] == 1.0
    assert {"angry_word", "repeated_message"} <= {r["signal"] for r in frustration["reasons"]}
    assert "frustration" in case["summary"] and "repeated_message" in case["summary"]
    # The form's question is not left pending behind the handoff.
    assert events[0] == {"event": "active_loop", "timestamp": None, "name": None}
    assert any(e.get("event") == "pause" for e in events)
    assert case["transcript"][0]["text"] == "卵が入ってないんだけど最悪"  # existing keys kept
    assert case["problem"] == "missing_item" and case["customer"]["line_user_id"] == DEMO


def test_a_rule_handoff_keeps_its_reason_and_still_shows_the_score(orders_db):
    events = angry_repeats_as_dicts()[:-1] + [listen(), user("人と話したい", "request_human", 0.98, at=40)]
    _, _, case = run_handoff(sdk_tracker(events))
    assert case["reason"] == "request_human"
    assert "request_human" in {r["signal"] for r in case["frustration"]["reasons"]}


def test_a_calm_handoff_has_a_zero_score(orders_db):
    _, _, case = run_handoff(sdk_tracker([user("卵アレルギーなのに卵が入っていた", "report_safety_issue", 1.0)]))
    assert case["reason"] == "safety"
    assert case["frustration"] == {"score": 0, "threshold": 1.0, "reasons": []}
    assert "frustration" not in case["summary"]


def test_the_summary_line_names_the_frustration_signals():
    context = {
        "reason": "frustration",
        "order": None,
        "problem": "late_delivery",
        "items": [],
        "remedies_offered": [],
        "remedies_refused": [],
        "frustration": {
            "score": 1.35,
            "threshold": 1.0,
            "reasons": [
                {"signal": "repeated_message", "weight": 1.0, "detail": ""},
                {"signal": "angry_word", "weight": 0.35, "detail": ""},
            ],
        },
    }
    assert (
        summary_line(CaseContext.from_dict(context))
        == "frustration | late_delivery | frustration 1.35/1.00: repeated_message, angry_word"
    )
