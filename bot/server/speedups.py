"""Measured bottlenecks of Rasa 3.6, removed without changing what Rasa answers.

Each speed-up was found with `bench/load.py --profile-rasa` (cProfile inside a Rasa server
holding whole claim conversations) and is measured with `--speedups` (this module's names,
or `none`). What each one bought is in docs/performance.md.

- `validator`: after every custom action Rasa checks the action server's answer with
  `jsonschema.validate(result, schema)`, which first checks the SCHEMA against the
  meta-schema, on every call. The schema is checked once and its validator reused; every
  answer is still validated, and an invalid one still fails through Rasa's own code.
- `event_schema`: Rasa's event schema is a `oneOf` over some twenty event types, each
  fixing `event` to its name, so each event is checked against its own type's schema
  only (the same verdict; an invalid answer still fails through Rasa's own code).
- `payloads`: a button's payload (`/inform{"remedy": ...}`) went through the whole NLU
  pipeline (tokenizer, featurizers, DIET) before Rasa's RegexMessageHandler threw that
  work away and replaced the result with the payload's intent and entities. The payload
  is unpacked by the same Rasa function, without the pipeline; text that is not a valid
  payload (unknown intent, typed prose starting with "/") still goes through NLU.
- `dialogue_cache`: the dialogue transformer (TEDPolicy) is a pure function of its
  featurized input once trained (no dropout at inference). Its outputs are kept in a
  bounded LRU keyed by a digest of that input, so a dialogue state seen before (most
  turns of most claims) is not run through TensorFlow again.
- `tracker_save`: the Redis tracker store read the stored tracker back on every save,
  rebuilt it event by event, replayed the new one up to the stored one's last event, and
  compared and merged the two. The outcome is worked out on the JSON form instead when it
  is certain (`merged_events`: the stored events line up with the tracker's, and every new
  event is newer); anything else goes through Rasa's own merge.
- `event_types`: turning a stored event back into an object looked its type up by
  walking every Event subclass (and `inspect.isabstract` on each), per event. The
  names are indexed once (and again when a name is not found).

RASA_SPEEDUPS: `all` (default), `none`, or a comma list of the names above.
RASA_FAST_VALIDATION=0 leaves out `validator` and `event_schema` (kept for older scripts).
RASA_DIALOGUE_CACHE_SIZE: entries of the dialogue cache (default 4096; about 2 KB each).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np


def _cached_validator(per_event_type: bool = False) -> None:
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    kind = validator_for(schema)
    kind.check_schema(schema)  # once, instead of on every action
    is_valid = (per_event_type and _by_event_type(schema, kind)) or kind(schema).is_valid
    original = getattr(RemoteAction._validate_action_result, "rasas_own", RemoteAction._validate_action_result)

    def _validate_action_result(self: RemoteAction, result: Dict[str, Any]) -> bool:
        if is_valid(result):
            return True
        return original(self, result)  # raises Rasa's own ValidationError with its message

    _validate_action_result.rasas_own = original  # type: ignore[attr-defined]
    RemoteAction._validate_action_result = _validate_action_result


def _event_schema() -> None:
    _cached_validator(per_event_type=True)


def _by_event_type(schema: Dict[str, Any], kind: Any) -> Optional[Callable[[Any], bool]]:
    """The same check as `schema`, each event against its own type's schema only.

    Rasa's event schema is `oneOf` some twenty schemas, one per event type, each fixing
    `event` to its own name: jsonschema tried every one on every event. As the names are
    distinct, an event meets "exactly one" exactly when it meets its own type's schema.
    None (check the whole schema) if the schema ever stops having that shape."""
    events = schema.get("properties", {}).get("events", {})
    event = events.get("items", {})
    branches = event.get("oneOf")
    if events.get("type") != "array" or not isinstance(branches, list) or "event" not in event.get("required", []):
        return None
    names = [b.get("properties", {}).get("event", {}).get("const") for b in branches]
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        return None
    common = {k: v for k, v in event.items() if k != "oneOf"}
    per_type = {n: kind({"allOf": [common, b]}).is_valid for n, b in zip(names, branches)}
    shell = kind(
        {**schema, "properties": {**schema["properties"], "events": {k: v for k, v in events.items() if k != "items"}}}
    ).is_valid

    def is_valid(result: Any) -> bool:
        if not shell(result):
            return False
        for item in result.get("events") or [] if isinstance(result, dict) else []:
            check = per_type.get(item.get("event")) if isinstance(item, dict) else None
            if check is None or not check(item):
                return False
        return True

    return is_valid


def _payloads_skip_nlu() -> None:
    from rasa.core.processor import MessageProcessor
    from rasa.nlu.classifiers.regex_message_handler import RegexMessageHandler
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
    from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
    from rasa.shared.nlu.training_data.message import Message

    original = MessageProcessor._parse_message_with_graph
    extractor = RegexMessageHandler().name  # the name the graph's handler gives payload entities

    def _parse_message_with_graph(
        self: MessageProcessor, message: Any, tracker: Any, only_output_properties: bool = True
    ) -> Dict[str, Any]:
        text = message.text or ""
        if text.lstrip().startswith("/"):
            plain = Message({TEXT: text})
            unpacked = YAMLStoryReader.unpack_regex_message(plain, self.domain, entity_extractor_name=extractor)
            if unpacked is not plain:  # a payload naming a known intent: what the graph would end with
                parse_data: Dict[str, Any] = {
                    TEXT: "",
                    INTENT: {INTENT_NAME_KEY: None, PREDICTED_CONFIDENCE_KEY: 0.0},
                    ENTITIES: [],
                }
                parse_data.update(unpacked.as_dict(only_output_properties=only_output_properties))
                return parse_data
        return original(self, message, tracker, only_output_properties)

    MessageProcessor._parse_message_with_graph = _parse_message_with_graph


def input_digest(batch_in: Sequence[Any]) -> bytes:
    """A digest of a model's batched input (every array's type, shape and bytes)."""
    digest = hashlib.blake2b(digest_size=20)
    for part in batch_in:
        array = np.ascontiguousarray(part)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.digest()


class PredictionCache:
    """A bounded LRU of a model's outputs by input digest; hits and misses counted."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: "OrderedDict[bytes, Dict[str, Any]]" = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get_or_run(self, key: bytes, run: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
        found = self.entries.get(key)
        if found is not None:
            self.hits += 1
            self.entries.move_to_end(key)
        else:
            self.misses += 1
            found = run()
            self.entries[key] = found
            if len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return copy.deepcopy(found)  # the caller may change what it gets; the entry stays


def _dialogue_cache() -> None:
    from rasa.core.policies.ted_policy import TED
    from rasa.utils.tensorflow.models import RasaModel

    size = int(os.environ.get("RASA_DIALOGUE_CACHE_SIZE", "4096"))
    original = RasaModel._rasa_predict

    def _rasa_predict(self: RasaModel, batch_in: Any) -> Dict[str, Any]:
        if not isinstance(self, TED):  # NLU input is the customer's text: rarely seen twice
            return original(self, batch_in)
        cache = self.__dict__.get("_prediction_cache")
        if cache is None:
            cache = self.__dict__["_prediction_cache"] = PredictionCache(size)
        return cache.get_or_run(input_digest(batch_in), lambda: original(self, batch_in))

    RasaModel._rasa_predict = _rasa_predict


def _stamp(event: Dict[str, Any]) -> Optional[float]:
    value = event.get("timestamp")
    return float(value) if isinstance(value, (int, float)) else None


def merged_events(stored: Dict[str, Any], saving: Dict[str, Any]) -> Optional[List[Dict[str, Any]]]:
    """The events Rasa's merge (RedisTrackerStore.save) would store, worked out on the JSON
    form without rebuilding either tracker; None when this cannot be sure (Rasa merges).

    Two cases are certain. The stored events are the first events of the tracker being
    saved, and every later event is newer than the stored last one: Rasa's merge keeps the
    tracker as it is. Or the tracker holds only the latest session (what `retrieve` gives)
    and the stored events end with its first events: Rasa keeps every stored event and
    adds each of the tracker's events that is not, as JSON, already there."""
    if stored.get("name") != saving.get("name"):
        return None
    old, new = stored.get("events") or [], saving.get("events") or []
    if not old:
        return new
    last = _stamp(old[-1])
    if last is None or any((stamp := _stamp(e)) is None or stamp > last for e in old):
        return None
    start = len(old) if not new else next((k for k in range(len(old)) if old[k] == new[0]), None)
    if start is None:
        return None
    overlap = len(old) - start
    if new[:overlap] != old[start:]:
        return None
    later = new[overlap:]
    if any((stamp := _stamp(e)) is None or stamp <= last for e in later):
        return None
    if start == 0:
        return new
    seen = {json.dumps(e, sort_keys=True) for e in old}
    events = list(old)
    for event in later:
        key = json.dumps(event, sort_keys=True)
        if key not in seen:
            seen.add(key)
            events.append(event)
    return events


def _tracker_save() -> None:
    from rasa.core.tracker_store import RedisTrackerStore

    async def save(self: RedisTrackerStore, tracker: Any, timeout: Optional[float] = None) -> None:
        await self.stream_events(tracker)
        if not timeout and self.record_exp:
            timeout = self.record_exp
        key = self.key_prefix + tracker.sender_id
        stored = self.red.get(key)
        dialogue = tracker.as_dialogue().as_dict()
        events = dialogue["events"] if stored is None else merged_events(json.loads(stored), dialogue)
        if events is not None:
            serialised = json.dumps({"events": events, "name": dialogue["name"]})  # as serialise_tracker
        else:
            prior = self.deserialise_tracker(tracker.sender_id, stored)
            serialised = self.serialise_tracker(self._merge_trackers(prior, tracker))
        self.red.set(key, serialised, ex=timeout)

    RedisTrackerStore.save = save


def _event_types() -> None:
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    original = Event.resolve_by_type
    by_name: Dict[str, Any] = {}

    def index() -> None:
        by_name.clear()
        for cls in all_subclasses(Event):  # the first of a name wins, as in Rasa's loop
            by_name.setdefault(cls.type_name, cls)

    def resolve_by_type(type_name: str, default: Optional[Any] = None) -> Optional[Any]:
        found = by_name.get(type_name)
        if found is None:
            index()  # a subclass imported since, or a name Rasa does not know
            found = by_name.get(type_name)
        return found if found is not None else original(type_name, default)

    Event.resolve_by_type = staticmethod(resolve_by_type)


SPEEDUPS: Dict[str, Callable[[], None]] = {
    "validator": _cached_validator,
    "event_schema": _event_schema,
    "payloads": _payloads_skip_nlu,
    "dialogue_cache": _dialogue_cache,
    "tracker_save": _tracker_save,
    "event_types": _event_types,
}
_installed: List[str] = []


def wanted(env: Optional[Dict[str, str]] = None) -> List[str]:
    """The speed-ups RASA_SPEEDUPS (and RASA_FAST_VALIDATION) ask for, in SPEEDUPS' order."""
    env = dict(os.environ) if env is None else env
    setting = env.get("RASA_SPEEDUPS", "all").strip().lower()
    if setting in ("", "all"):
        names = list(SPEEDUPS)
    elif setting == "none":
        names = []
    else:
        names = [n.strip() for n in setting.split(",") if n.strip()]
        unknown = sorted(set(names) - set(SPEEDUPS))
        if unknown:
            raise ValueError(f"RASA_SPEEDUPS: unknown {', '.join(unknown)} (known: {', '.join(SPEEDUPS)}, all, none)")
    if env.get("RASA_FAST_VALIDATION", "1") == "0":
        names = [n for n in names if n not in ("validator", "event_schema")]
    return [n for n in SPEEDUPS if n in names]


def install() -> List[str]:
    """Patch Rasa with the wanted speed-ups (idempotent); the names installed."""
    for name in wanted():
        if name not in _installed:
            SPEEDUPS[name]()
            _installed.append(name)
    return list(_installed)
