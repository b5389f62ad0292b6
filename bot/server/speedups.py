"""A measured bottleneck of Rasa 3.6, removed without changing what Rasa does.

After every custom action, Rasa checks the action server's answer against its response
schema with `jsonschema.validate(result, schema)`. That call first checks the SCHEMA
against the JSON Schema meta-schema, on every call: in the load bench (bench/load.py
--profile-rasa) it was most of Rasa's CPU, and removing it took Rasa's CPU per customer
message from 142 ms to 57 ms. Here the schema is checked once and its validator reused;
every answer is still validated, and an invalid one still fails through Rasa's own code
(same error, same message). RASA_FAST_VALIDATION=0 turns it off (to measure it).
"""

from __future__ import annotations

import os
from typing import Any, Dict


def install() -> bool:
    """Patch Rasa's action-result validation; True when installed (idempotent)."""
    if os.environ.get("RASA_FAST_VALIDATION", "1") == "0":
        return False
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    if getattr(RemoteAction, "_validator_cached", False):
        return True
    schema = RemoteAction.action_response_format_spec()
    kind = validator_for(schema)
    kind.check_schema(schema)  # once, instead of on every action
    validator = kind(schema)
    original = RemoteAction._validate_action_result

    def _validate_action_result(self: RemoteAction, result: Dict[str, Any]) -> bool:
        if validator.is_valid(result):
            return True
        return original(self, result)  # raises Rasa's own ValidationError with its message

    RemoteAction._validate_action_result = _validate_action_result
    RemoteAction._validator_cached = True
    return True
