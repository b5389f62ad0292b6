"""bot/server/speedups.py: each speed-up gives what Rasa itself gives, only cheaper.

Real Rasa objects throughout: RemoteAction's validation, Rasa's payload unpacking, the
dialogue transformer's model class, DialogueStateTracker and RedisTrackerStore's merge."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.core.tracker_store import RedisTrackerStore
from rasa.shared.core.events import ActionExecuted, Event, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot.server import speedups


@pytest.fixture
def action(monkeypatch) -> RemoteAction:
    monkeypatch.setattr(RemoteAction, "_validate_action_result", RemoteAction._validate_action_result)
    monkeypatch.setenv("RASA_SPEEDUPS", "validator")
    monkeypatch.setattr(speedups, "_installed", [])
    assert speedups.install() == ["validator"]
    return RemoteAction("action_ask_remedy", EndpointConfig("http://127.0.0.1:1/webhook"))


def test_a_valid_answer_passes_without_checking_the_schema_again(action, monkeypatch):
    checks = []
    kind = jsonschema.validators.validator_for(RemoteAction.action_response_format_spec())
    monkeypatch.setattr(kind, "check_schema", classmethod(lambda cls, schema: checks.append(schema)))
    # What Rasa 3.6 did on every answer: jsonschema.validate checks the schema each time.
    jsonschema.validate({"events": []}, RemoteAction.action_response_format_spec())
    assert len(checks) == 1
    answer = {"events": [{"event": "slot", "name": "remedy", "value": "refund_item"}], "responses": [{"text": "OK"}]}
    for _ in range(3):
        assert action._validate_action_result(answer) is True
    assert len(checks) == 1  # no more than the one above


def test_an_invalid_answer_is_still_refused_with_rasas_message(action):
    with pytest.raises(ValidationError) as error:
        action._validate_action_result({"events": "not a list"})
    assert "Failed to validate Action server response from API" in error.value.message


def test_the_speedups_are_chosen_by_name_and_can_all_be_turned_off():
    assert speedups.wanted({}) == list(speedups.SPEEDUPS)
    assert speedups.wanted({"RASA_SPEEDUPS": "none"}) == []
    assert speedups.wanted({"RASA_SPEEDUPS": "tracker_save, payloads"}) == ["payloads", "tracker_save"]
    assert {"validator", "event_schema"}.isdisjoint(speedups.wanted({"RASA_FAST_VALIDATION": "0"}))
    with pytest.raises(ValueError, match="unknown fast_everything"):
        speedups.wanted({"RASA_SPEEDUPS": "fast_everything"})


# --- the dialogue cache ------------------------------------------------------------------


def test_a_dialogue_state_seen_before_is_answered_from_the_cache_and_a_new_one_is_run():
    runs = []
    cache = speedups.PredictionCache(size=2)

    def run(value):
        runs.append(value)
        return {"action_scores": np.array([value, 1.0 - value])}

    first = speedups.input_digest((np.array([[1, 0, 1]], dtype=np.int32),))
    again = speedups.input_digest((np.array([[1, 0, 1]], dtype=np.int32),))
    other = speedups.input_digest((np.array([[1, 0, 1]], dtype=np.int64),))  # same numbers, other type
    assert first == again and first != other
    answer = cache.get_or_run(first, lambda: run(0.9))
    answer["action_scores"][0] = -1  # a caller changing its copy changes nothing kept
    assert cache.get_or_run(again, lambda: run(0.1))["action_scores"][0] == pytest.approx(0.9)
    assert runs == [0.9] and (cache.hits, cache.misses) == (1, 1)
    cache.get_or_run(other, lambda: run(0.2))
    cache.get_or_run(speedups.input_digest((np.zeros(2),)), lambda: run(0.3))  # the oldest is dropped
    assert len(cache.entries) == 2 and first not in cache.entries


# --- the tracker store's save ------------------------------------------------------------


def tracker(events) -> DialogueStateTracker:
    return DialogueStateTracker.from_events("customer-1", events)


def as_json(t: DialogueStateTracker) -> dict:
    return json.loads(json.dumps(t.as_dialogue().as_dict()))


def rasas_merge(stored: DialogueStateTracker, saving: DialogueStateTracker) -> list:
    return as_json(RedisTrackerStore._merge_trackers(stored, saving))["events"]


def session(t0: float, sender_text: str) -> list:
    return [
        SlotSet("session_started_metadata", {"language": "ja"}, timestamp=t0),
        ActionExecuted("action_session_start", timestamp=t0 + 0.1),
        SessionStarted(timestamp=t0 + 0.2),
        ActionExecuted("action_listen", timestamp=t0 + 0.3),
        UserUttered(sender_text, {"name": "report_missing_item", "confidence": 0.98}, timestamp=t0 + 0.4),
    ]


def test_a_tracker_that_goes_on_from_the_stored_one_is_saved_as_rasa_would_save_it():
    stored = tracker(session(100.0, "卵が入っていません"))
    saving = tracker(list(stored.events) + [SlotSet("problem", "missing_item", timestamp=101.0)])
    assert speedups.merged_events(as_json(stored), as_json(saving)) == rasas_merge(stored, saving)


def test_the_latest_session_after_earlier_ones_is_merged_as_rasa_merges_it():
    earlier = session(100.0, "卵が入っていません")
    latest = session(200.0, "fries missing")
    stored = tracker(earlier + latest)
    # what `retrieve` gives: the latest session only (from its action_session_start)
    saving = tracker(latest[1:] + [SlotSet("problem", "missing_item", timestamp=201.0)])
    merged = speedups.merged_events(as_json(stored), as_json(saving))
    assert merged == rasas_merge(stored, saving)
    assert len(merged) == len(earlier) + len(latest) + 1


def test_anything_it_cannot_be_sure_of_is_left_to_rasas_merge():
    stored = tracker(session(100.0, "卵が入っていません"))
    # another replica wrote a different event meanwhile: the two do not line up
    rewritten = tracker(list(stored.events)[:-1] + [UserUttered("別の文", timestamp=100.4)])
    assert speedups.merged_events(as_json(stored), as_json(rewritten)) is None
    # a new event older than the stored last one (clocks apart): Rasa's replay decides
    older = tracker(list(stored.events) + [SlotSet("problem", "late", timestamp=50.0)])
    assert speedups.merged_events(as_json(stored), as_json(older)) is None
    other = as_json(stored) | {"name": "someone-else"}
    assert speedups.merged_events(other, as_json(stored)) is None


# --- events by type name -----------------------------------------------------------------


def test_events_are_still_found_by_their_type_name(monkeypatch):
    monkeypatch.setattr(Event, "resolve_by_type", Event.resolve_by_type)
    original = Event.resolve_by_type
    speedups._event_types()
    for name in ("slot", "user", "action", "session_started", "followup", "active_loop"):
        assert Event.resolve_by_type(name) is original(name)
    assert Event.resolve_by_type("no_such_event", default=SlotSet) is SlotSet
    with pytest.raises(ValueError, match="Unknown event name"):
        Event.resolve_by_type("no_such_event")


# --- button payloads ---------------------------------------------------------------------


def test_a_payload_is_unpacked_without_the_nlu_pipeline_and_prose_still_goes_through_it(monkeypatch):
    from types import SimpleNamespace

    from rasa.core.channels.channel import UserMessage
    from rasa.core.processor import MessageProcessor
    from rasa.shared.core.domain import Domain

    through_nlu = []
    monkeypatch.setattr(
        MessageProcessor,
        "_parse_message_with_graph",
        lambda self, message, tracker, only=True: through_nlu.append(message.text) or {"intent": {"name": "nlu"}},
    )
    speedups._payloads_skip_nlu()
    processor = SimpleNamespace(domain=Domain.from_dict({"intents": ["inform", "affirm"], "entities": ["remedy"]}))
    parse = MessageProcessor._parse_message_with_graph

    tapped = parse(processor, UserMessage('/inform{"remedy": "refund_item"}'), None)
    assert tapped["intent"] == {"name": "inform", "confidence": 1.0}
    assert [(e["entity"], e["value"]) for e in tapped["entities"]] == [("remedy", "refund_item")]
    assert tapped["entities"][0]["extractor"] == "RegexMessageHandler"  # as the graph's handler names them
    assert through_nlu == []
    # typed prose that starts with "/" and a payload naming an intent the domain lacks
    for text in ("/ 卵がない", "/choose_order{}", "卵がない"):
        assert parse(processor, UserMessage(text), None) == {"intent": {"name": "nlu"}}
    assert through_nlu == ["/ 卵がない", "/choose_order{}", "卵がない"]


ANSWERS = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "remedy", "value": "refund_item", "timestamp": None}]},
    {"events": [{"event": "slot", "name": "remedy"}]},  # a slot without its value
    {"events": [{"event": "slot", "name": "remedy", "value": 1, "timestamp": "now"}]},
    {"events": [{"name": "remedy", "value": "refund_item"}]},  # no event type
    {"events": [{"event": "no_such_event"}]},
    {"events": [{"event": 7}]},
    {"events": ["slot"]},
    {"events": "not a list"},
    {"events": [{"event": "followup", "name": "action_ask_remedy"}, {"event": "active_loop", "name": None}]},
    {"events": [{"event": "user", "text": "卵", "parse_data": {"intent": {"name": "inform"}}}]},
    {"events": [{"event": "bot", "text": "OK", "metadata": "not an object"}]},
    {"responses": [{"text": "OK"}, "bare text"]},
    {"responses": [{"text": "OK", "buttons": []}]},
    [],
    {},
]


@pytest.mark.parametrize("answer", ANSWERS, ids=lambda a: json.dumps(a, ensure_ascii=False)[:60])
def test_checking_each_event_against_its_own_type_gives_the_whole_schemas_verdict(answer):
    schema = RemoteAction.action_response_format_spec()
    kind = jsonschema.validators.validator_for(schema)
    by_type = speedups._by_event_type(schema, kind)
    assert by_type is not None  # Rasa's schema still has the shape it relies on
    assert by_type(answer) == kind(schema).is_valid(answer)
