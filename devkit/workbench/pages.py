"""Texts (Japanese and English) and the HTML around every page (string.Template, no Jinja).

Every value put into a page goes through `esc` unless it is HTML this package built.
"""

from __future__ import annotations

import html
import json
from string import Template
from typing import Dict, List, Mapping, Optional
from urllib.parse import urlencode

LANGS = ("ja", "en")
DEFAULT_LANG = "ja"
LANG_COOKIE = "wb_lang"

# key -> (Japanese, English)
TEXTS: Dict[str, tuple] = {
    "brand": ("注文サポート ワークベンチ", "Order-support workbench"),
    "nav": ("ページ", "Pages"),
    "nav_live": ("お試し（LINE と Slack）", "Try it (LINE and Slack)"),
    "nav_review": ("学習データの見直し", "Review and retrain"),
    "nav_cases": ("ケースの集計", "Cases"),
    "other_lang": ("English", "日本語"),
    "skip": ("本文へ移動", "Skip to content"),
    # live page
    "phone": ("お客様の LINE", "The customer's LINE"),
    "customer": ("お客様", "Customer"),
    "type_message": ("メッセージを入力", "Type a message"),
    "send": ("送信", "Send"),
    "bot_name": ("注文サポート", "Order support"),
    "you_are_customer": (
        "あなたはお客様です。チップをタップすると LINE のクイックリプライと同じく送信されます。下のリッチメニュー（make rich-menu で公開したもの）もタップできます。",
        "You are the customer. Chips are LINE quick replies: tap one to send it. The rich menu below (what make rich-menu published) works too.",
    ),
    "slack": ("担当者の Slack", "The agents' Slack"),
    "agent": ("担当者として操作", "Acting as agent"),
    "channel_empty": (
        "まだケースはありません。ボットが担当者に引き継ぐと、ここにカードが届きます。",
        "No case yet. When the bot hands a case over, its card arrives here.",
    ),
    "thread": ("スレッド", "Thread"),
    "thread_none": ("カードの「返信」を押すとスレッドが開きます。", "Open a card's replies to see its thread."),
    "replies": ("件の返信", "replies"),
    "open_thread": ("スレッドを開く", "Open thread"),
    "reply": ("スレッドに返信", "Reply in thread"),
    "reply_hint": (
        "返信はお客様の LINE に届きます。// で始めると社内メモ（お客様には届きません）。",
        "Replies reach the customer on LINE. Start with // for an internal note (never sent).",
    ),
    "reply_send": ("送信", "Send"),
    "gateway_error": ("ゲートウェイが受け付けませんでした", "The gateway refused it"),
    "unreachable": (
        "接続できません（エミュレーターまたはゲートウェイが停止中？）",
        "Cannot reach the emulator or the gateway (are they running?)",
    ),
    "pressed": ("ボタンを押しました", "Pressed"),
    "app": ("アプリ", "APP"),
    "photo": ("写真", "Photo"),
    "sticker": ("スタンプ", "Sticker"),
    # the agent pane's controls (modals, private notes, selects)
    "only_you": ("あなただけに表示されています", "Only visible to you"),
    "also_channel": ("チャンネルにも送信", "Also sent to the channel"),
    "in_supervisors": ("上長チャンネル", "Supervisors' channel"),
    "choose": ("選択してください", "Choose"),
    "close": ("閉じる", "Close"),
    "submit": ("送信", "Submit"),
    "cancel": ("キャンセル", "Cancel"),
    "optional": ("（任意）", "(optional)"),
    # review page
    "review_title": ("ボットが誤解したメッセージ", "Messages the bot misunderstood"),
    "review_intro": (
        "正しい意図を選んで「学習データに追加」を押すと、scripts/import_review.py が bot/data/nlu/ に追記します（再学習は make train）。",
        "Pick the right intent and press “Add to training data”: scripts/import_review.py appends it to bot/data/nlu/ (then retrain with make train).",
    ),
    "refresh_queue": ("キューを更新", "Refresh the queue"),
    "queue_missing": ("キューのファイルがまだありません", "The queue file does not exist yet"),
    "queue_empty": ("キューは空です。", "The queue is empty."),
    "col_message": ("メッセージ", "Message"),
    "col_lang": ("言語", "Lang"),
    "col_predicted": ("予測された意図", "Predicted intent"),
    "col_confidence": ("確信度", "Confidence"),
    "col_reason": ("理由", "Reason"),
    "col_time": ("日時", "Time"),
    "col_label": ("正しい意図", "Correct intent"),
    "add_training": ("学習データに追加", "Add to training data"),
    "added": ("追加済み", "Added"),
    "output_of": ("実行結果", "Output of"),
    "exit_code": ("終了コード", "exit code"),
    "eval_title": ("前回の評価", "The last evaluation"),
    "eval_missing": ("評価結果がまだありません", "No evaluation yet"),
    "matrix": ("意図の混同行列", "Intent confusion matrix"),
    "matrix_missing": ("画像がありません", "No image"),
    # cases page
    "cases_title": ("ケースの集計", "Cases"),
    "period": ("期間", "Period"),
    "from": ("開始日", "From"),
    "to": ("終了日", "To"),
    "show": ("表示", "Show"),
    "last_7": ("過去7日", "Last 7 days"),
    "last_30": ("過去30日", "Last 30 days"),
    "all_time": ("全期間", "All"),
    "n_cases": ("ケース数", "Cases"),
    "by_problem": ("問題の種類別", "Cases by problem type"),
    "by_remedy": ("適用した対応（実際の対応とクーポン）", "Remedies applied (a real fix vs a coupon)"),
    "real_remedy": ("実際の対応", "Real remedy"),
    "coupon": ("次回用クーポン", "Coupon for later"),
    "handoff_rate": ("担当者への引き継ぎ率", "Handoff rate"),
    "handed_off": ("引き継ぎ", "Handed off"),
    "bot_only": ("ボットのみ", "Bot only"),
    "handoff_reasons": ("引き継ぎの理由", "Handoff reasons"),
    "resolution_time": ("解決までの時間", "Time to resolution"),
    "by_bot": ("ボットが対応", "Solved by the bot"),
    "by_agent": ("担当者が対応", "Solved by an agent"),
    "median": ("中央値", "median"),
    "satisfaction": ("満足度の回答", "Satisfaction answers"),
    "satisfied": ("解決した", "Satisfied"),
    "not_satisfied": ("解決していない", "Not satisfied"),
    "no_answer": ("回答なし", "No answer"),
    "recent_cases": ("ケース一覧", "Cases in the period"),
    "col_case": ("ケース番号", "Case"),
    "col_opened": ("受付", "Opened"),
    "col_problem": ("問題", "Problem"),
    "col_status": ("状態", "Status"),
    "col_remedy": ("対応", "Remedy"),
    "col_handoff": ("引き継ぎ理由", "Handoff reason"),
    "col_resolved": ("解決", "Resolved"),
    "col_minutes": ("所要時間", "Time taken"),
    "col_satisfaction": ("満足度", "Satisfaction"),
    "no_data": ("この期間のデータはありません。", "No data in this period."),
    "db_error": ("注文データベースを読めません", "Cannot read the orders database"),
    # the ops APIs (the action server's /ops/*, the gateway's /ops/cases) and why one is silent
    "ops_unreachable": ("アクションサーバーに接続できません", "the action server is unreachable"),
    "ops_refused": ("OPS_API_TOKEN が受け付けられません", "OPS_API_TOKEN was refused"),
    "ops_off": ("ops API が無効です（OPS_API_TOKEN なし）", "the ops API is off (no OPS_API_TOKEN)"),
    "ops_failed": ("ops API がエラーを返しました", "the ops API answered with an error"),
    "live_note": ("ケースの状態: ゲートウェイ（対応中・未対応）", "Case state: the gateway (claimed or not)"),
    "live_unreachable": (
        "ケースの状態: データベースのみ（ゲートウェイに接続できません）",
        "Case state: database only (the gateway is unreachable)",
    ),
    "live_refused": (
        "ケースの状態: データベースのみ（ゲートウェイが OPS_API_TOKEN を拒否）",
        "Case state: database only (the gateway refused OPS_API_TOKEN)",
    ),
    "live_off": (
        "ケースの状態: データベースのみ（ゲートウェイの ops API が無効）",
        "Case state: database only (the gateway's ops API is off)",
    ),
    "live_failed": (
        "ケースの状態: データベースのみ（ゲートウェイのケース情報を読めません）",
        "Case state: database only (the gateway cannot read its cases)",
    ),
    "status_open": ("未対応", "Unclaimed"),
    "status_claimed": ("対応中", "Claimed"),
    "status_resolved": ("解決済み", "Resolved"),
    "status_remedied": ("ボットが対応", "Remedied by the bot"),
    "status_handed_off": ("引き継ぎ済み", "Handed off"),
    "status_in_progress": ("受付中", "In progress"),
    "problem_none": ("（問題の特定前）", "(before a problem was named)"),
    "minutes": ("分", "min"),
    "times_note": ("日付は日本時間。", "Dates in Japan time."),
    # the quality ("CS damage") page
    "nav_quality": ("CS ダメージ", "CS damage"),
    "quality_title": ("CS ダメージ（対応品質の監査）", "CS damage (the quality audit)"),
    "quality_intro": (
        "終わったケースも含め、お客様をがっかりさせた箇所: 監査のパターン別の件数、ひどいケースと該当する発言、繰り返しの不具合の通知、約束の時刻のあとのフォローアップ。",
        "Where customers were let down, even in cases that ended: audit findings by pattern, the worst cases with the turns that show them, recurring-problem alerts, the follow-ups after a promised time.",
    ),
    "n_audited": ("件を監査", "cases audited"),
    "n_findings": ("件の指摘", "findings"),
    "n_damaged": ("件のケースに指摘あり", "cases with a finding"),
    "findings_by_pattern": ("パターン別の指摘", "Findings by pattern"),
    "findings_by_role": ("発言者別の指摘", "Findings by who said the turn"),
    "no_findings": ("この期間の指摘はありません。", "No findings in this period."),
    "worst_cases": ("指摘の多いケース", "The worst cases"),
    "role_customer": ("お客様", "Customer"),
    "role_bot": ("ボット", "Bot"),
    "role_agent": ("担当者", "Agent"),
    "recurring_alerts": ("繰り返しの不具合の通知", "Recurring-problem alerts"),
    "no_alerts": ("この期間の通知はありません。", "No alerts in this period."),
    "col_raised": ("通知", "Raised"),
    "col_alert_kind": ("種類", "Kind"),
    "col_shop": ("店舗", "Shop"),
    "col_item": ("商品", "Item"),
    "col_count": ("件数", "Count"),
    "col_cases": ("ケース", "Cases"),
    "alert_same_item_at_shop": ("同じ店舗で同じ商品", "Same item at one shop"),
    "alert_same_shop": ("同じ店舗", "Same shop"),
    "follow_ups": ("フォローアップの結果", "Follow-up outcomes"),
    "follow_asked": ("確認した", "Asked"),
    "follow_no_answer": ("回答なし", "No answer yet"),
    "follow_arrived": ("届いた", "Arrived"),
    "follow_not_arrived": ("届いていない", "Not arrived"),
    "follow_skipped_budget": ("送信上限のため省略", "Skipped (push budget spent)"),
    "skipped_note": (
        "省略の件数はゲートウェイが月ごとに数えます（期間にかかる月の合計）。",
        "The gateway counts skips per month (the months the period touches).",
    ),
    "skipped_unknown": (
        "省略の件数: ゲートウェイに接続できません。",
        "Skips: the gateway is unreachable.",
    ),
}


def t(lang: str, key: str) -> str:
    pair = TEXTS.get(key)
    if pair is None:
        return key
    return pair[0] if lang == "ja" else pair[1]


def texts_for(lang: str) -> Dict[str, str]:
    """All texts in one language, for the page's JavaScript."""
    return {k: t(lang, k) for k in TEXTS}


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def pick_lang(query_lang: Optional[str], cookie_lang: Optional[str]) -> str:
    for candidate in (query_lang, cookie_lang):
        if candidate in LANGS:
            return candidate  # type: ignore[return-value]
    return DEFAULT_LANG


LAYOUT = Template("""<!doctype html>
<html lang="$lang">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title · $brand</title>
<link rel="stylesheet" href="/static/workbench.css">
</head>
<body class="page-$page">
<a class="skip" href="#main">$skip</a>
<header class="topbar">
  <span class="brand">$brand</span>
  <nav aria-label="$nav_label">$nav</nav>
  <a class="lang-toggle" href="$other_lang_href" hreflang="$other_lang" lang="$other_lang">$other_lang_label</a>
</header>
<main id="main" tabindex="-1">
$body
</main>
$scripts
</body>
</html>
""")

NAV = (
    ("live", "/", "nav_live"),
    ("review", "/review", "nav_review"),
    ("cases", "/cases", "nav_cases"),
    ("quality", "/quality", "nav_quality"),
)


def layout(lang: str, page: str, title: str, body: str, query: Mapping[str, str], scripts: List[str] = ()) -> str:
    """The whole document: top bar with the pages and the language toggle, then `body`."""
    links = []
    for name, href, key in NAV:
        current = ' aria-current="page"' if name == page else ""
        links.append(f'<a href="{href}"{current}>{esc(t(lang, key))}</a>')
    other = "en" if lang == "ja" else "ja"
    # the toggle keeps the rest of the query (the cases page's period)
    toggled = {k: v for k, v in query.items() if k not in ("lang", "result")}
    toggled["lang"] = other
    script_tags = "\n".join(f'<script src="{esc(s)}" defer></script>' for s in scripts)
    return LAYOUT.substitute(
        lang=lang,
        title=esc(title),
        brand=esc(t(lang, "brand")),
        page=page,
        skip=esc(t(lang, "skip")),
        nav_label=esc(t(lang, "nav")),
        nav="\n".join(links),
        other_lang=other,
        other_lang_href=esc("?" + urlencode(toggled)),
        other_lang_label=esc(t(lang, "other_lang")),
        body=body,
        scripts=script_tags,
    )


def json_script(element_id: str, data: object) -> str:
    """Data for the page's JavaScript; `</` is escaped so the text cannot close the tag."""
    raw = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    return f'<script id="{esc(element_id)}" type="application/json">{raw}</script>'


__all__ = [
    "DEFAULT_LANG",
    "LANGS",
    "LANG_COOKIE",
    "TEXTS",
    "esc",
    "json_script",
    "layout",
    "pick_lang",
    "t",
    "texts_for",
]
