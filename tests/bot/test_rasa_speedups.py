"""bot/server/speedups.py: Rasa still validates every action server answer, and still
refuses an invalid one with its own error, but checks the schema only once."""

from __future__ import annotations

import jsonschema
import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.utils.endpoints import EndpointConfig

from bot.server import speedups


@pytest.fixture
def action(monkeypatch) -> RemoteAction:
    monkeypatch.setattr(RemoteAction, "_validate_action_result", RemoteAction._validate_action_result)
    monkeypatch.delattr(RemoteAction, "_validator_cached", raising=False)
    assert speedups.install()
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


def test_it_can_be_turned_off_to_measure_it(monkeypatch):
    monkeypatch.setenv("RASA_FAST_VALIDATION", "0")
    assert speedups.install() is False
