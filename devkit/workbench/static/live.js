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
    }
    poll();
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

  function lineMessage(m) {
    switch (m.type) {
      case "text": return el("div", { class: "bubble", text: m.text || "" });
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
    col.append(lineMessage(m));
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

  async function press(message, button) {
    if (button.confirm) {
      const c = button.confirm;
      const ask = ((c.title || {}).text || "") + "\n" + String((c.text || {}).text || "").replace(/\*/g, "");
      if (!window.confirm(ask)) return;
    }
    const node = document.activeElement;
    if (node && node.tagName === "BUTTON") node.disabled = true;
    await post("/api/slack/press", { ts: message.ts, action_id: button.action_id, agent });
    poll();
  }

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
        body.append(el("div", { class: "sk-actions", role: "group" }, (b.elements || []).filter((e) => e.type === "button").map((btn) =>
          el("button", {
            type: "button", class: "sk-btn " + (btn.style || ""), "data-action-id": btn.action_id,
            text: (btn.text || {}).text || btn.action_id, onclick: () => press(m, btn),
          }))));
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
      channel.replaceChildren(...cards.map((m) => slackMessage(m, true)));
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
    thread.replaceChildren(slackMessage(parent, false), el("hr"), ...replies.map((m) => slackMessage(m, false)));
    thread.scrollTop = thread.scrollHeight;
    form.hidden = false;
  }

  // ------------------------------------------------------------------ polling and controls
  async function poll() {
    clearTimeout(timer);
    try {
      const r = await fetch("/api/live?user=" + encodeURIComponent(user), { cache: "no-store" });
      const data = await r.json();
      setStatus((data.errors || []).length ? T.unreachable + " [" + data.errors.join(", ") + "]" : "");
      if (data.phone) {
        const key = JSON.stringify(data.phone);
        if (key !== lastPhone) { lastPhone = key; renderPhone(data.phone); }
      }
      if (data.slack) {
        const key = JSON.stringify(data.slack);
        if (key !== lastSlack) { lastSlack = key; slackMessages = data.slack; renderSlack(data.slack); }
      }
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
    const url = new URL(window.location.href);
    url.searchParams.set("user", user);
    history.replaceState(null, "", url);
    poll();
  });
  $("agent-select").addEventListener("change", (ev) => { agent = ev.target.value; });

  poll();
})();
