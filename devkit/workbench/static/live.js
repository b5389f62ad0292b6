// The live page: polls /api/live and draws the customer's LINE chat and the Slack channel.
// Every text from a message is put in with textContent, or escaped before any markup.
"use strict";
(function () {
  const root = document.getElementById("live");
  if (!root) return;
  const T = JSON.parse(document.getElementById("wb-texts").textContent);
  const PEOPLE = JSON.parse(document.getElementById("wb-people").textContent);
  const pollMs = Number(root.dataset.pollMs) || 700;
  const $ = (id) => document.getElementById(id);
  let user = root.dataset.user;
  let agent = root.dataset.agent;
  let selectedTs = null; // the card whose thread is open
  let lastPhone = "";
  let lastRichMenu = "";
  let richMenuOpen = null; // null: as the menu's `selected` says, until the customer toggles it
  let lastSlack = "";
  let slackMessages = [];
  let timer = null;

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "html") node.innerHTML = v; // only markup built by mrkdwn() below
      else if (k === "style") Object.assign(node.style, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children || []) if (c) node.append(c);
    return node;
  }

  async function post(url, body) {
    try {
      const r = await fetch(url, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      const data = await r.json().catch(() => ({ ok: false }));
      if (!r.ok || data.ok === false) setStatus(T.gateway_error + " (" + (data.gateway_status || data.status || r.status) + ")");
      return data;
    } catch (e) {
      setStatus(T.unreachable);
      return { ok: false };
    }
  }

  function setStatus(text) { $("live-status").textContent = text || ""; }

  function hhmm(seconds) {
    if (!seconds) return "";
    const d = new Date(Number(seconds) * 1000);
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }

  // ------------------------------------------------------------------ the customer's LINE
  async function sendText(text) {
    await post("/api/line/send", { user, text });
    poll();
  }

  async function tap(action) {
    if (!action) return;
    if (action.type === "postback") {
      await post("/api/line/tap", { user, data: action.data, display: action.displayText || "" });
    } else if (action.type === "message") {
      await post("/api/line/send", { user, text: action.text || action.label });
    } else if (action.type === "uri" && /^https?:/.test(action.uri || "")) {
      window.open(action.uri, "_blank", "noopener"); // LINE opens its in-app browser
      return;
    }
    poll();
  }

  // The rich menu under the chat (the one linked to this customer, else the default): its
  // image with a button over each area, and the chat bar (chatBarText) that opens and closes it.
  function renderRichMenu(rm) {
    const box = $("rich-menu");
    if (!rm) { box.hidden = true; box.replaceChildren(); return; }
    const menu = rm.menu || {};
    const size = menu.size || { width: 2500, height: 1686 };
    if (richMenuOpen === null) richMenuOpen = menu.selected !== false;
    const panel = el("div", { class: "rm-panel", id: "rich-menu-panel", hidden: !richMenuOpen }, [
      el("img", { class: "rm-image", src: "/api/line/rich_menu/" + encodeURIComponent(rm.id) + ".png", alt: "" }),
      ...(menu.areas || []).map((area, i) => {
        const b = area.bounds || {};
        const a = area.action || {};
        return el("button", {
          type: "button", class: "rm-area", "data-area": i, "aria-label": a.label || a.displayText || a.type,
          title: a.label || "",
          style: {
            left: (100 * b.x / size.width) + "%", top: (100 * b.y / size.height) + "%",
            width: (100 * b.width / size.width) + "%", height: (100 * b.height / size.height) + "%",
          },
          onclick: () => tap(a),
        });
      }),
    ]);
    const bar = el("button", {
      type: "button", class: "rm-bar", "aria-expanded": String(richMenuOpen), "aria-controls": "rich-menu-panel",
      text: (menu.chatBarText || "") + (richMenuOpen ? " ▾" : " ▴"),
      onclick: () => { richMenuOpen = !richMenuOpen; renderRichMenu(rm); },
    });
    box.replaceChildren(bar, panel);
    box.dataset.richMenuId = rm.id;
    box.dataset.source = rm.source || "";
    box.hidden = false;
  }

  function flexNode(c, parentLayout) {
    const style = {};
    if (parentLayout === "horizontal" || parentLayout === "baseline") {
      style.flex = (c.flex === undefined ? 1 : c.flex) + " 1 0";
    } else if (c.flex !== undefined && c.flex !== 0) {
      style.flex = c.flex + " 1 auto";
    }
    if (c.color) style.color = c.color;
    if (c.backgroundColor) style.backgroundColor = c.backgroundColor;
    const margin = c.margin ? " fx-m-" + c.margin : "";
    switch (c.type) {
      case "box": {
        const box = el("div", { class: "fx-box fx-" + (c.layout || "vertical") + margin, style });
        const gap = { xs: 2, sm: 4, md: 8, lg: 12, xl: 16, xxl: 20 }[c.spacing];
        if (gap) box.style.gap = gap + "px";
        for (const child of c.contents || []) box.append(flexNode(child, c.layout || "vertical"));
        return box;
      }
      case "text":
        return el("div", {
          class: "fx-text fx-size-" + (c.size || "md") + (c.weight === "bold" ? " fx-bold" : "") +
            (c.align ? " fx-align-" + c.align : "") + (c.wrap ? " fx-wrap" : " fx-nowrap") + margin,
          style, text: c.text || "",
        });
      case "separator":
        return el("hr", { class: "fx-sep" + margin, style: c.color ? { borderTopColor: c.color } : {} });
      case "button": {
        const a = c.action || {};
        return el("button", {
          type: "button", class: "fx-btn fx-" + (c.style || "link") + (c.height === "sm" ? " fx-h-sm" : "") + margin,
          style, text: a.label || "", onclick: () => tap(a),
        });
      }
      case "image":
        return el("img", { src: c.url, alt: "", class: "line-image" + margin });
      case "filler": case "spacer":
        return el("div", { style });
      default:
        return el("div", { text: "[" + c.type + "]" });
    }
  }

  function flexBubble(contents) {
    const bubbles = contents.type === "carousel" ? contents.contents || [] : [contents];
    const wrap = el("div", { class: "fx-carousel" });
    for (const b of bubbles) {
      const bubble = el("div", { class: "fx-bubble" });
      for (const part of ["header", "hero", "body", "footer"]) {
        if (b[part]) bubble.append(el("div", { class: "fx-section fx-" + part }, [flexNode(b[part], "vertical")]));
      }
      wrap.append(bubble);
    }
    return wrap;
  }

  function lineMessage(m, quoted) {
    switch (m.type) {
      case "text":
        // a reply that quotes the customer's message shows it above, as LINE does
        if (quoted) return el("div", { class: "bubble" }, [el("div", { class: "quote", text: quoted.text || "" }), el("div", { text: m.text || "" })]);
        return el("div", { class: "bubble", text: m.text || "" });
      case "flex": return flexBubble(m.contents || {});
      case "image": return el("img", { class: "line-image", src: m.previewImageUrl || m.originalContentUrl, alt: T.photo });
      case "sticker": return el("div", { class: "bubble", text: "🧸 " + T.sticker });
      default: return el("div", { class: "bubble", text: "[" + m.type + "]" });
    }
  }

  function lineEntry(e) {
    if (e.from === "system") return el("div", { class: "line-system", text: T.gateway_error + " (HTTP " + e.status + ")" });
    const m = e.message || {};
    const mine = e.from === "customer";
    const col = el("div", { class: "line-col" });
    // an agent's push carries LINE's `sender` (their name); the bot speaks as the account
    const who = m.sender ? m.sender.name : T.bot_name;
    if (!mine) col.append(el("div", { class: "sender", text: who }));
    col.append(lineMessage(m, e.quoted));
    return el("div", { class: "line-row " + (mine ? "me" : "them"), "data-from": e.from }, [
      mine ? null : el("div", { class: "avatar" + (m.sender ? " agent" : ""), "aria-hidden": "true", text: who.slice(0, 1) }),
      col,
      el("time", { class: "line-time", text: hhmm(e.at) }),
    ]);
  }

  function renderPhone(timeline) {
    const log = $("chat-log");
    log.replaceChildren(...timeline.map(lineEntry));
    log.scrollTop = log.scrollHeight;
    // LINE shows quick replies only on the last message received, until the customer answers
    const chips = $("chips");
    chips.replaceChildren();
    const last = timeline[timeline.length - 1];
    const items = last && last.from === "bot" ? ((last.message || {}).quickReply || {}).items || [] : [];
    for (const item of items) {
      const a = item.action || {};
      chips.append(el("button", { type: "button", class: "chip", text: a.label || a.text || "", onclick: () => tap(a) }));
    }
  }

  // ------------------------------------------------------------------ the agents' Slack
  function escHtml(s) {
    return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }
  function decode(s) { return s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&"); }

  // Slack mrkdwn -> safe HTML: <@U..>, <!here>, <url|label> first (as placeholders, so
  // *bold* may span them), then the text is escaped, then *bold* _italic_ ~strike~ `code`.
  function mrkdwn(text) {
    const specials = [];
    const marked = String(text || "").replace(/<([^<>\n]+)>/g, (_, inner) => {
      let html;
      if (inner[0] === "@") html = '<span class="mention">@' + escHtml(PEOPLE[inner.slice(1).split("|")[0]] || inner.slice(1)) + "</span>";
      else if (inner[0] === "!") html = '<span class="mention">@' + escHtml(inner.slice(1).split("|")[0]) + "</span>";
      else if (inner[0] === "#") html = '<span class="mention">#' + escHtml(inner.split("|")[1] || inner.slice(1)) + "</span>";
      else {
        const [url, label] = inner.split("|");
        const safe = /^https?:/.test(url) ? escHtml(decode(url)) : "#";
        html = '<a href="' + safe + '" target="_blank" rel="noopener">' + escHtml(decode(label || url)) + "</a>";
      }
      specials.push(html);
      return "\u0000" + (specials.length - 1) + "\u0000";
    });
    let h = escHtml(decode(marked));
    h = h.replace(/`([^`\n]+)`/g, "<code>$1</code>")
      .replace(/\*([^*\n]+)\*/g, "<b>$1</b>")
      .replace(/(^|[\s(])_([^_\n]+)_(?=$|[\s).,:;])/g, "$1<i>$2</i>")
      .replace(/~([^~\n]+)~/g, "<s>$1</s>")
      .replace(/\n/g, "<br>");
    return h.replace(/\u0000(\d+)\u0000/g, (_, i) => specials[Number(i)]);
  }

  function textOf(obj) {
    if (!obj) return "";
    return obj.type === "mrkdwn" ? mrkdwn(obj.text) : escHtml(obj.text || "");
  }

  function richText(block) {
    const out = [];
    for (const section of block.elements || []) {
      for (const e of section.elements || []) {
        if (e.type === "text") out.push(e.text);
        else if (e.type === "user") out.push("<@" + e.user_id + ">");
        else if (e.type === "link") out.push(e.text || e.url);
      }
    }
    return out.join("");
  }

  // (the card's action rows are drawn by actionElement(), in "the agent's controls" below)

  function blocksOf(m) {
    const body = el("div", { class: "sk-body" });
    const blocks = m.blocks || [];
    const onlyRichText = blocks.length && blocks.every((b) => b.type === "rich_text");
    if (!blocks.length || onlyRichText) {
      const text = onlyRichText ? blocks.map(richText).join("\n") : m.text || "";
      body.append(el("div", { class: text.startsWith("//") ? "sk-section sk-note" : "sk-section", html: mrkdwn(text) }));
    }
    for (const b of onlyRichText ? [] : blocks) {
      if (b.type === "header") body.append(el("div", { class: "sk-header", text: (b.text || {}).text || "" }));
      else if (b.type === "section") {
        if (b.text) body.append(el("div", { class: "sk-section", html: textOf(b.text) }));
        if (b.fields) body.append(el("div", { class: "sk-fields" }, b.fields.map((f) => el("div", { html: textOf(f) }))));
      } else if (b.type === "context") {
        body.append(el("div", { class: "sk-context" }, (b.elements || []).map((e) =>
          e.type === "image" ? el("img", { src: e.image_url, alt: e.alt_text || "", width: 16, height: 16 })
            : el("span", { html: textOf(e) }))));
      } else if (b.type === "actions") {
        body.append(el("div", { class: "sk-actions", role: "group", "data-block-id": b.block_id },
          (b.elements || []).map((e) => actionElement(m, b, e))));
      } else if (b.type === "divider") body.append(el("hr"));
      else if (b.type === "rich_text") body.append(el("div", { class: "sk-section", html: mrkdwn(richText(b)) }));
      else if (b.type === "image") body.append(el("img", { src: b.image_url, alt: b.alt_text || "", class: "line-image" }));
    }
    if (m.files && m.files.length) {
      body.append(el("div", { class: "sk-files", text: m.files.map((f) => "📎 " + (f.title || f.name || f.id)).join("  ") }));
    }
    return body;
  }

  const EMOJI = { white_check_mark: "✅", x: "❌", eyes: "👀", heavy_check_mark: "✔️", warning: "⚠️", hourglass: "⏳" };

  function slackMessage(m, inChannel) {
    const isBot = Boolean(m.bot_id);
    const name = m.user_name || m.user || "?";
    const replies = inChannel && m.reply_count
      ? el("button", {
        type: "button", class: "sk-thread-link", "aria-label": T.open_thread,
        text: m.reply_count + " " + T.replies, onclick: () => openThread(m.ts),
      })
      : null;
    const reactions = (m.reactions || []).length
      ? el("div", { class: "sk-reactions" }, m.reactions.map((r) =>
        el("span", { class: "sk-reaction", title: ":" + r.name + ":", text: (EMOJI[r.name] || ":" + r.name + ":") + " " + (r.count || 1) })))
      : null;
    return el("article", {
      class: "sk-msg" + (inChannel && m.ts === selectedTs ? " selected" : ""), "data-ts": m.ts,
      "aria-label": name + " " + hhmm(m.ts),
    }, [
      el("div", { class: "sk-avatar" + (isBot ? " bot" : ""), "aria-hidden": "true", text: isBot ? "OS" : name.slice(0, 1) }),
      el("div", {}, [
        el("div", { class: "sk-meta" }, [
          el("span", { class: "sk-name", text: name }),
          isBot ? el("span", { class: "sk-badge", text: T.app }) : null,
          el("span", { class: "sk-time", text: hhmm(m.ts) }),
        ]),
        blocksOf(m), reactions, replies,
      ]),
    ]);
  }

  function isCard(m) { return !m.thread_ts || m.thread_ts === m.ts; }

  function openThread(ts) {
    selectedTs = ts;
    renderSlack(slackMessages);
    $("reply-text").focus();
  }

  function renderSlack(messages) {
    const cards = messages.filter(isCard);
    const channel = $("channel");
    if (!cards.length) {
      channel.replaceChildren(el("p", { class: "empty", text: T.channel_empty }));
    } else {
      if (!selectedTs || !cards.some((c) => c.ts === selectedTs)) selectedTs = cards[cards.length - 1].ts;
      const stick = channel.scrollHeight - channel.scrollTop - channel.clientHeight < 60;
      channel.replaceChildren(...messages.filter((m) => isCard(m) || isBroadcast(m)).map(channelItem));
      if (stick) channel.scrollTop = channel.scrollHeight;
    }
    const thread = $("thread");
    const form = $("reply-form");
    const parent = messages.find((m) => m.ts === selectedTs);
    if (!parent) {
      thread.replaceChildren(el("p", { class: "empty", text: T.thread_none }));
      form.hidden = true;
      return;
    }
    const replies = messages.filter((m) => m.thread_ts === selectedTs && m.ts !== selectedTs);
    thread.replaceChildren(slackMessage(parent, false), el("hr"), ...threadItems(replies, selectedTs));
    thread.scrollTop = thread.scrollHeight;
    form.hidden = false;
  }

  // ------------------------------------------------------------------ the agent's controls
  // Every element of the card's action rows, drawn from the Block Kit the gateway posted
  // (buttons with their confirm dialogs, users_select, static_select); each use goes to
  // /api/slack/act, which posts it to the gateway as Slack would (with the row's block_id).
  // Then: the modal the click opened (views.open) for this agent, the notes only they see.
  const USERS = JSON.parse(($("wb-users") || { textContent: "{}" }).textContent);
  let agentViews = [];     // the modals open for this agent (/api/live "views")
  let ephemerals = [];     // what only this agent sees (chat.postEphemeral, response_url)
  let supervisorPosts = []; // the supervisors' channel, when escalations go there
  let lastAgentPane = "";
  let shownView = null;     // the view id of the modal on screen
  const doneViews = new Set(); // submitted or cancelled here: never shown again

  function plain(obj) { return (obj && obj.text) || ""; }

  function actionElement(m, b, e) {
    const common = { "data-action-id": e.action_id, "data-block-id": b.block_id || "" };
    if (e.type === "button") {
      return el("button", {
        type: "button", class: "sk-btn " + (e.style || ""), ...common,
        text: plain(e.text) || e.action_id, onclick: (ev) => act(m, b, e, null, ev.currentTarget),
      });
    }
    if (e.type === "users_select" || e.type === "static_select") {
      const label = plain(e.placeholder) || e.action_id;
      const choices = e.type === "users_select"
        ? Object.entries(USERS).map(([id, name]) => ({ value: id, text: name }))
        : selectOptions(e).map((o) => ({ value: o.value, text: plain(o.text) }));
      const select = el("select", { class: "sk-select", "aria-label": label, ...common }, [
        el("option", { value: "", text: label }),
        ...choices.map((c) => el("option", { value: c.value, text: c.text })),
      ]);
      select.addEventListener("change", () => { if (select.value) act(m, b, e, select.value, select); });
      return select;
    }
    return el("span", { class: "sk-context", text: "[" + e.type + "]" });
  }

  function selectOptions(e) {
    return (e.options || []).concat(...(e.option_groups || []).map((g) => g.options || []));
  }

  async function act(m, b, e, value, node) {
    if (e.confirm && !(await confirmDialog(e.confirm))) {
      if (node && node.tagName === "SELECT") node.value = "";
      return;
    }
    if (node) node.disabled = true;
    await post("/api/slack/act", { ts: m.ts, block_id: b.block_id || null, action_id: e.action_id, value, agent });
    if (node) node.disabled = false;
    poll();
  }

  // Slack's confirm object (title, text, confirm, deny) as an in-page dialog
  function confirmDialog(c) {
    return new Promise((resolve) => {
      const done = (answer) => { overlay.remove(); resolve(answer); };
      const box = el("div", { class: "sk-modal sk-confirm", role: "alertdialog", "aria-modal": "true", "aria-labelledby": "sk-confirm-title" }, [
        el("h2", { class: "sk-modal-title", id: "sk-confirm-title", text: plain(c.title) || "?" }),
        el("div", { class: "sk-modal-body" }, [el("div", { class: "sk-section", html: textOf(c.text) })]),
        el("div", { class: "sk-modal-foot" }, [
          el("button", { type: "button", class: "sk-btn", "data-role": "deny", text: plain(c.deny) || T.cancel, onclick: () => done(false) }),
          el("button", { type: "button", class: "sk-btn " + (c.style === "danger" ? "danger" : "primary"), "data-role": "confirm", text: plain(c.confirm) || "OK", onclick: () => done(true) }),
        ]),
      ]);
      const overlay = el("div", { class: "sk-overlay" }, [box]);
      overlay.addEventListener("keydown", (ev) => { if (ev.key === "Escape") done(false); });
      document.body.append(overlay);
      box.querySelector('[data-role="confirm"]').focus();
    });
  }

  // The modal the agent's click opened: drawn from the view's blocks, submitted with the
  // values by block_id; the app's `response_action: "errors"` shows under each block.
  function syncModal(views) {
    agentViews = views || [];
    if (shownView && !agentViews.some((v) => v.id === shownView)) closeModal();
    if (shownView) return;
    const next = agentViews.filter((v) => !doneViews.has(v.id)).pop();
    if (next) showModal(next);
  }

  function closeModal() {
    const overlay = $("sk-modal-overlay");
    if (overlay) overlay.remove();
    shownView = null;
  }

  function modalControl(b) {
    const e = b.element || {};
    const id = "mi-" + b.block_id;
    const attrs = { id, class: "sk-input", "data-block-id": b.block_id, "data-type": e.type, "aria-describedby": id + "-hint " + id + "-error" };
    if (e.type === "static_select" || e.type === "users_select") {
      const choices = e.type === "users_select"
        ? Object.entries(USERS).map(([v, name]) => ({ value: v, text: name }))
        : selectOptions(e).map((o) => ({ value: o.value, text: plain(o.text) }));
      const initial = e.type === "users_select" ? e.initial_user : (e.initial_option || {}).value;
      return el("select", attrs, [
        el("option", { value: "", text: plain(e.placeholder) || T.choose }),
        ...choices.map((c) => el("option", { value: c.value, text: c.text, selected: c.value === initial })),
      ]);
    }
    if (e.type === "plain_text_input" && e.multiline) {
      const area = el("textarea", { ...attrs, rows: 5, maxlength: e.max_length, placeholder: plain(e.placeholder) });
      area.value = e.initial_value || "";
      return area;
    }
    const input = el("input", {
      ...attrs, type: e.type === "number_input" ? "number" : "text", autocomplete: "off",
      inputmode: e.type === "number_input" ? (e.is_decimal_allowed ? "decimal" : "numeric") : null,
      min: e.min_value, max: e.max_value, step: e.type === "number_input" ? (e.is_decimal_allowed ? "any" : "1") : null,
      maxlength: e.max_length, placeholder: plain(e.placeholder),
    });
    input.value = e.initial_value || "";
    return input;
  }

  function modalBlock(b) {
    if (b.type === "input") {
      const id = "mi-" + b.block_id;
      return el("div", { class: "sk-field", "data-block-id": b.block_id }, [
        el("label", { class: "sk-label", for: id, text: plain(b.label) + (b.optional ? " " + T.optional : "") }),
        modalControl(b),
        el("div", { class: "sk-hint", id: id + "-hint", text: plain(b.hint) }),
        el("div", { class: "sk-error", id: id + "-error", role: "alert", hidden: true }),
      ]);
    }
    if (b.type === "section") return el("div", { class: "sk-section", html: textOf(b.text) });
    if (b.type === "context") return el("div", { class: "sk-context" }, (b.elements || []).map((e) => el("span", { html: textOf(e) })));
    if (b.type === "header") return el("div", { class: "sk-header", text: plain(b.text) });
    if (b.type === "divider") return el("hr");
    return el("div", { class: "sk-context", text: "[" + b.type + "]" });
  }

  function showModal(record) {
    const v = record.view || {};
    shownView = record.id;
    const cancel = async () => {
      doneViews.add(record.id);
      closeModal();
      await post("/api/slack/view_close", { view_id: record.id });
    };
    const form = el("form", {
      class: "sk-modal", id: "sk-modal", role: "dialog", "aria-modal": "true", "aria-labelledby": "sk-modal-title",
      "data-view-id": record.id, "data-callback-id": v.callback_id || "", novalidate: true,
    }, [
      el("div", { class: "sk-modal-head" }, [
        el("h2", { class: "sk-modal-title", id: "sk-modal-title", text: plain(v.title) }),
        el("button", { type: "button", class: "sk-modal-x", "aria-label": T.close, text: "×", onclick: cancel }),
      ]),
      el("div", { class: "sk-error sk-modal-error", role: "alert", hidden: true }),
      el("div", { class: "sk-modal-body" }, (v.blocks || []).map(modalBlock)),
      el("div", { class: "sk-modal-foot" }, [
        el("button", { type: "button", class: "sk-btn", "data-role": "close", text: plain(v.close) || T.cancel, onclick: cancel }),
        v.submit ? el("button", { type: "submit", class: "sk-btn primary", "data-role": "submit", text: plain(v.submit) }) : null,
      ]),
    ]);
    form.addEventListener("submit", (ev) => { ev.preventDefault(); submitModal(form, record.id); });
    const overlay = el("div", { class: "sk-overlay", id: "sk-modal-overlay" }, [form]);
    overlay.addEventListener("keydown", (ev) => { if (ev.key === "Escape") cancel(); });
    document.body.append(overlay);
    const first = form.querySelector(".sk-input");
    if (first) first.focus();
  }

  async function submitModal(form, viewId) {
    const values = {};
    for (const input of form.querySelectorAll(".sk-input")) {
      const select = input.tagName === "SELECT";
      values[input.dataset.blockId] = select && !input.value ? null : input.value;
    }
    for (const node of form.querySelectorAll(".sk-error")) { node.hidden = true; node.textContent = ""; }
    for (const node of form.querySelectorAll(".sk-field")) node.classList.remove("has-error");
    const submit = form.querySelector('[data-role="submit"]');
    if (submit) submit.disabled = true;
    const data = await post("/api/slack/view_submit", { view_id: viewId, values, agent });
    if (submit) submit.disabled = false;
    if (data.errors) {
      for (const [blockId, message] of Object.entries(data.errors)) {
        const field = [...form.querySelectorAll(".sk-field")].find((f) => f.dataset.blockId === blockId);
        const box = field ? field.querySelector(".sk-error") : form.querySelector(".sk-modal-error");
        box.textContent = String(message);
        box.hidden = false;
        if (field) field.classList.add("has-error");
      }
      const bad = form.querySelector(".has-error .sk-input");
      if (bad) bad.focus();
    } else if (data.ok || data.closed) {
      doneViews.add(viewId);
      closeModal();
    }
    poll();
  }

  // The thread: replies, the notes only this agent sees, and the supervisors' post about
  // this case (in their channel when one is set), in time order.
  function threadItems(replies, ts) {
    const items = replies.map((m) => ({ ts: m.ts, node: () => slackMessage(m, false) }));
    for (const e of ephemerals.filter((x) => x.thread_ts === ts)) {
      items.push({ ts: e.ts, node: () => ephemeralMessage(e) });
    }
    for (const m of supervisorPosts.filter((x) => JSON.stringify(x.blocks || x.text).includes("ts " + ts))) {
      items.push({ ts: m.ts, node: () => labelled(slackMessage(m, false), "sk-supervisor", "# " + T.in_supervisors) });
    }
    return items.sort((a, b) => Number(a.ts) - Number(b.ts)).map((i) => i.node());
  }

  function labelled(node, cls, text) {
    node.classList.add(cls);
    node.children[1].prepend(el("div", { class: "sk-label-line", text }));
    return node;
  }

  function ephemeralMessage(e) {
    const m = { ts: e.ts, text: e.text, blocks: e.blocks, user_name: "order-support", bot_id: "ephemeral" };
    const node = labelled(slackMessage(m, false), "sk-ephemeral", "👁 " + T.only_you);
    node.dataset.ephemeral = e.via || "";
    return node;
  }

  function isBroadcast(m) { return m.subtype === "thread_broadcast" && m.thread_ts && m.thread_ts !== m.ts; }

  function channelItem(m) {
    if (!isBroadcast(m)) return slackMessage(m, true);
    const node = labelled(slackMessage(m, true), "sk-broadcast", "↪ " + T.also_channel);
    node.dataset.broadcast = m.thread_ts;
    node.addEventListener("click", () => openThread(m.thread_ts));
    return node;
  }

  function syncAgentPane(data) {
    const key = JSON.stringify([data.ephemerals || [], data.supervisor || []]);
    if (key !== lastAgentPane) {
      lastAgentPane = key;
      ephemerals = data.ephemerals || [];
      supervisorPosts = data.supervisor || [];
      renderSlack(slackMessages);
    }
    syncModal(data.views);
  }

  // ------------------------------------------------------------------ polling and controls
  let pollSeq = 0;
  let agentSeq = 0;
  async function poll() {
    clearTimeout(timer);
    const seq = ++pollSeq;
    try {
      const r = await fetch("/api/live?user=" + encodeURIComponent(user) + "&agent=" + encodeURIComponent(agent), { cache: "no-store" });
      const data = await r.json();
      setStatus((data.errors || []).length ? T.unreachable + " [" + data.errors.join(", ") + "]" : "");
      if (data.phone) {
        const key = JSON.stringify(data.phone);
        if (key !== lastPhone) { lastPhone = key; renderPhone(data.phone); }
      }
      if (data.rich_menu !== undefined) {
        const key = JSON.stringify(data.rich_menu);
        if (key !== lastRichMenu) { lastRichMenu = key; renderRichMenu(data.rich_menu); }
      }
      if (data.slack) {
        const key = JSON.stringify(data.slack);
        if (key !== lastSlack) { lastSlack = key; slackMessages = data.slack; renderSlack(data.slack); }
      }
      if (data.views && seq > agentSeq) { agentSeq = seq; syncAgentPane(data); } // never an older answer
    } catch (e) {
      setStatus(T.unreachable);
    }
    timer = setTimeout(poll, pollMs);
  }

  $("chat-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $("chat-text");
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    sendText(text);
  });

  $("reply-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const box = $("reply-text");
    const text = box.value.trim();
    if (!text || !selectedTs) return;
    box.value = "";
    await post("/api/slack/reply", { ts: selectedTs, text, agent });
    poll();
  });
  // Enter sends, Shift+Enter is a new line (as in Slack); never while an IME is composing
  $("reply-text").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $("reply-form").requestSubmit();
    }
  });

  $("customer-select").addEventListener("change", (ev) => {
    user = ev.target.value;
    lastPhone = "";
    lastRichMenu = "";
    const url = new URL(window.location.href);
    url.searchParams.set("user", user);
    history.replaceState(null, "", url);
    poll();
  });
  $("agent-select").addEventListener("change", (ev) => {
    agent = ev.target.value;
    closeModal(); // another person's modals and private notes
    lastAgentPane = "";
    poll();
  });

  poll();
})();
