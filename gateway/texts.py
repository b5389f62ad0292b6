"""What the gateway itself says to customers (everything else comes from Rasa)."""

from __future__ import annotations

from typing import Dict

_TEXTS: Dict[str, Dict[str, str]] = {
    "apology": {
        "ja": "申し訳ありません。ただいまメッセージを処理できませんでした。"
        "メッセージはお預かりしており、まもなくお返事いたします。",
        "en": "Sorry, we could not process that just now. We have your message and will answer shortly.",
    },
    "greeting": {
        "ja": "友だち追加ありがとうございます！ご注文でお困りのことがあれば、"
        "こちらにメッセージでお知らせください。"
        "（例：「親子丼に別卵が付いていませんでした」「配達が遅れています」）",
        "en": "Thanks for adding us! If something went wrong with an order, just tell us "
        'here (for example: "my order is missing the fries" or "my delivery is late").',
    },
    "sticker": {
        "ja": "スタンプありがとうございます！ご注文で何があったか、文章で教えていただけますか？"
        "（例：「親子丼に別卵が付いていませんでした」）",
        "en": "Thanks for the sticker! Could you please tell us in words what happened "
        'with your order? (for example: "my order is missing the fries")',
    },
    # a photo says nothing about language: the customer's LINE profile language decides
    "image_received": {
        "ja": "写真を受け取りました。ありがとうございます。担当者が確認いたします。",
        "en": "Thank you, we received your photo and will look at it.",
    },
    "image_failed": {
        "ja": "申し訳ありません、写真を受け取れませんでした。もう一度送っていただけますか？",
        "en": "Sorry, we could not receive your photo. Could you send it again?",
    },
    "unsupported": {
        "ja": "メッセージありがとうございます。申し訳ありませんが、この形式には対応していません。"
        "ご注文で何があったか、文章で教えていただけますか？",
        "en": "Thank you for your message. Sorry, we can't read this kind of message: "
        "could you please tell us in words what happened with your order?",
    },
    # a button tap the gateway did not make for this customer (customer_input.py):
    # neutral, since honest buttons go stale too
    "choose_again": {
        "ja": "申し訳ありません、このボタンは使えなくなりました。最新のメッセージからもう一度"
        "お選びいただくか、文章でお知らせください。",
        "en": "Sorry, this button can no longer be used. Please choose again from the "
        "latest message, or tell us in words.",
    },
    # LINE's account link (account_link.py): the button to the shop's login page ...
    "account_link_title": {
        "ja": "アカウント連携",
        "en": "Link your account",
    },
    "account_link_text": {
        "ja": "ショップのアカウントでログインしていただくと、このLINEアカウントと連携します。"
        "次回からは注文番号なしでご注文をお調べできます。",
        "en": "Log in with your shop account to link it with this LINE account. "
        "Next time I can look up your orders without the order number.",
    },
    "account_link_button": {
        "ja": "ログインして連携する",
        "en": "Log in and link",
    },
    # ... LINE reported that the link did not succeed
    "account_link_failed": {
        "ja": "申し訳ありません、アカウントの連携を完了できませんでした。お手数ですが、もう一度はじめからお試しください。",
        "en": "Sorry, we could not complete the account link. Please try again from the beginning.",
    },
    # ... a person has the conversation just now (the bot is paused)
    "account_link_later": {
        "ja": "ただいま担当者が対応中のため、アカウントの連携はまだ行っておりません。"
        "対応が終わりましたら、お手数ですがもう一度お試しください。",
        "en": "A member of our team is looking after this conversation, so the account link was not "
        "done yet. Please try again once they have finished.",
    },
}


def text(key: str, language: str) -> str:
    variants = _TEXTS[key]
    return variants.get(language) or variants["ja"]
