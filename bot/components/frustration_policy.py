"""A dialogue policy that hands the conversation to a person when the customer's
frustration score (bot/frustration.py) reaches the threshold in bot/remedy_policy.yml.

Right after each customer message it computes the score; at or above the threshold it
predicts `action_handoff` with confidence 1.0, above every other policy (also above an
active claim form, which would otherwise keep asking its question); below it, it predicts
nothing and the other policies decide. It leaves alone the messages that rules already
send to a person (asking for one, frustration, safety, payment), button taps (a choice
the customer made, not their words), intents the gateway triggers when an agent acts, and
paused conversations.

Nothing is learned: "training" only records that there is nothing to learn. The settings
are read from bot/remedy_policy.yml when Rasa loads the model, so a change of weights or
threshold needs a restart, not a retraining.
"""

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

from rasa.core.constants import RULE_POLICY_PRIORITY
from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

from bot.frustration import assess
from bot.remedy_policy.loader import load_policy
from bot.remedy_policy.types import FrustrationSettings

logger = logging.getLogger(__name__)

# Intents whose rules already hand the case to a person, with their own reason.
RULE_HANDOFF_INTENTS = ("request_human", "express_frustration", "report_safety_issue", "ask_payment_or_account")


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True)
class FrustrationPolicy(Policy):
    """Predicts the handoff when the frustration score reaches the threshold."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            # Above RulePolicy: a frustrated customer reaches a person even mid-form.
            "priority": RULE_POLICY_PRIORITY + 1,
            # None: $REMEDY_POLICY_PATH or bot/remedy_policy.yml (its `frustration:` section).
            "policy_file": None,
            "handoff_action": "action_handoff",
            "skip_intents": list(RULE_HANDOFF_INTENTS),
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        featurizer: Optional[Any] = None,
    ) -> None:
        config = {**self.get_default_config(), **config}
        super().__init__(config, model_storage, resource, execution_context, featurizer)
        self.settings: FrustrationSettings = load_policy(config.get("policy_file") or None).frustration

    def train(
        self,
        training_trackers: List[TrackerWithCachedStates],
        domain: Domain,
        **kwargs: Any,
    ) -> Resource:
        """Nothing to learn; records the fact so that the model holds this policy."""
        with self._model_storage.write_to(self._resource) as path:
            (Path(path) / "frustration_policy.json").write_text(
                json.dumps({"trainable": False, "settings": "bot/remedy_policy.yml frustration:"}), encoding="utf-8"
            )
        return self._resource

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[Text, Any]] = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        """`action_handoff` at 1.0 when the score reaches the threshold, else nothing."""
        probabilities = self._default_predictions(domain)
        if not self._applies(tracker, domain):
            return self._prediction(probabilities)
        # All events, not `applied_events()`: that one folds a form's turns together and
        # drops the customer's messages inside it. bot/frustration.py cuts at the session.
        events = [event.as_dict() for event in tracker.events]
        assessment = assess(events, self.settings)
        if not assessment.hand_off:
            return self._prediction(probabilities, diagnostic_data={"frustration": assessment.as_dict()})
        logger.debug(f"Frustration {assessment.score} >= {assessment.threshold}: {assessment.signals}")
        probabilities[domain.index_for_action(self.config["handoff_action"])] = 1.0
        # A "no user" prediction, like an active form's own: it must win over the form.
        return self._prediction(
            probabilities, is_no_user_prediction=True, diagnostic_data={"frustration": assessment.as_dict()}
        )

    def _applies(self, tracker: DialogueStateTracker, domain: Domain) -> bool:
        if tracker.latest_action_name != ACTION_LISTEN_NAME or tracker.is_paused():
            return False
        if self.config["handoff_action"] not in domain.action_names_or_texts:
            return False
        message = tracker.latest_message
        if message is None or not message.text:
            return False
        if message.text.startswith("/"):  # a button tap
            return False
        if (message.metadata or {}).get("is_external") or message.text.startswith("EXTERNAL: "):
            return False  # an intent triggered by the gateway (an agent acted), not the customer
        return (message.intent or {}).get("name") not in self.config["skip_intents"]
