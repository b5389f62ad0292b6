"""The action server's registry: `rasa run actions --actions bot.actions` loads these.

Each concern has its own module; this file only imports them so rasa-sdk registers their
actions.
"""

from bot.actions.account_link import (  # noqa: F401
    ActionAccountLinked,
    ActionOfferAccountLink,
    ActionUnlinkAccount,
)
from bot.actions.agent import (  # noqa: F401
    ActionAgentApprovedRemedy,
    ActionAgentResolved,
    ActionRecordSatisfaction,
)
from bot.actions.claims import (  # noqa: F401
    ActionAskClaimItems,
    ActionAskOrderId,
    ActionStartClaim,
    ValidateClaimForm,
)
from bot.actions.fallback import ActionClarifyOrHandoff  # noqa: F401
from bot.actions.follow_up import ActionAskFollowUp, ActionRecordFollowUp  # noqa: F401
from bot.actions.handoff import ActionHandoff  # noqa: F401
from bot.actions.language import ActionDetectLanguage  # noqa: F401
from bot.actions.remedies import ActionAskRemedy, ActionAskRemedyConfirmed, ActionCompleteClaim  # noqa: F401
from bot.actions.session import ActionSessionStart  # noqa: F401
