"""LINE's account link: a customer proves who they are on the shop's login page once, and
their LINE id is linked to their shop account, so later claims need no order number.

The flow (docs/account-link.md): the bot offers it with the custom payload
`{"account_link": {}}` (ACCOUNT_LINK_OFFER); the gateway turns that into a button to the
shop's login page with a fresh LINE link token. The page verifies the customer and sends
them to LINE with a nonce it signed (contracts/account_link.py); LINE then sends the
gateway an `accountLink` event, and the gateway triggers `EXTERNAL_account_linked` with
the nonce in the `account_link_nonce` slot.

- `action_account_linked`: verifies the nonce (ACCOUNT_LINK_KEY, fresh), uses it once
  (its digest recorded, UNIQUE) and links the LINE id (the sender id) to the customer it
  names. A LINE account already linked to another customer, or a customer linked to
  another LINE account, is never moved: nothing is linked and the customer is asked to
  unlink first. A replay links nothing; to the LINE user it linked it says "already
  linked" (a retried delivery reads right), to anyone else that it was used.
- `action_offer_account_link` (postback /link_account): linked -> "already linked as X"
  with an unlink button; not linked -> the offer.
- `action_unlink_account` (postback /unlink_account): unlinks, confirms.

No nonce, key or LINE id is logged.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions import services
from contracts.account_link import KEY_ENV, NonceInvalid, nonce_digest, verify_nonce

log = logging.getLogger(__name__)

NONCE_SLOT = "account_link_nonce"
# The custom payload the gateway turns into the "link your account" button (a new dict
# each time: the dispatcher keeps what it is given).
OFFER_KEY = "account_link"


def account_link_offer() -> Dict[str, Any]:
    return {OFFER_KEY: {}}


class ActionAccountLinked(Action):
    """LINE reported an account link with a nonce: verify it, use it once, link."""

    def name(self) -> Text:
        return "action_account_linked"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        events: List[EventType] = [SlotSet(NONCE_SLOT, None)]  # used (or refused): not kept
        nonce = tracker.get_slot(NONCE_SLOT)
        try:
            link = verify_nonce(os.environ.get(KEY_ENV, ""), nonce, now=time.time())
        except NonceInvalid as exc:
            log.warning("account link refused: %s", exc)
            dispatcher.utter_message(response="utter_account_link_failed")
            return events
        result = services.repository().link_by_nonce(
            nonce_digest(nonce), link.customer_id, tracker.sender_id, services.now()
        )
        if result.status == "linked":
            log.info("a LINE user was linked to a customer by LINE's account link")
            dispatcher.utter_message(response="utter_account_linked", name=result.customer.display_name)
            dispatcher.utter_message(response="utter_how_can_i_help")
        elif result.status == "already_linked":
            dispatcher.utter_message(response="utter_account_already_linked", name=result.customer.display_name)
        elif result.status == "replayed":
            mine = services.repository().customer_by_line_id(tracker.sender_id)
            log.warning("account link refused: the nonce was used before")
            if mine is not None and mine.id == link.customer_id:
                # the same link delivered again (a retry): it is in place, nothing more to do
                dispatcher.utter_message(response="utter_account_already_linked", name=mine.display_name)
            else:
                dispatcher.utter_message(response="utter_account_link_used")
        elif result.status == "taken":
            log.info("account link refused: the LINE account or the customer is linked to another")
            dispatcher.utter_message(response="utter_account_link_taken")
        else:  # no_customer
            log.warning("account link refused: the nonce names no customer of ours")
            dispatcher.utter_message(response="utter_account_link_failed")
        return events


class ActionOfferAccountLink(Action):
    """The customer asked to link: already linked -> who, with an unlink button; else the offer."""

    def name(self) -> Text:
        return "action_offer_account_link"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        customer = services.repository().customer_by_line_id(tracker.sender_id)
        if customer is not None:
            dispatcher.utter_message(response="utter_account_already_linked", name=customer.display_name)
            return []
        dispatcher.utter_message(response="utter_account_link_offer")
        dispatcher.utter_message(json_message=account_link_offer())
        return []


class ActionUnlinkAccount(Action):
    """The customer asked to unlink: their LINE id is taken off their shop account."""

    def name(self) -> Text:
        return "action_unlink_account"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        customer = services.repository().unlink_line_user(tracker.sender_id)
        if customer is None:
            dispatcher.utter_message(response="utter_account_not_linked")
            return []
        log.info("a LINE user unlinked their shop account")
        dispatcher.utter_message(response="utter_account_unlinked", name=customer.display_name)
        return []


__all__ = ["ActionAccountLinked", "ActionOfferAccountLink", "ActionUnlinkAccount", "account_link_offer"]
