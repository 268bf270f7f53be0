"""The script a client installs on every page that carries the Bitrix24 live-chat widget.

It gives the widget the visitor's host session id, signed by the host, as custom data
(``setCustomData``): Bitrix24 keeps the latest a page sent and writes it into each dialog once,
when the dialog is created, as the operator-facing line ``<marker>: <id>`` in the host's
language (``marker``). That line is what attributes the dialog. The script also reports the pair
{host session, Open Lines session} when the dialog starts, a claim the host keeps
(``sessions``). It acts once per page, however many copies of it the page carries. The code is
a fixed template; the only variable part is a JSON config, escaped for a <script>.

Given the code endpoint and the messenger links to mark (``MessengerLink``), it also puts the
visit's code (``messenger_codes``) into those links when they are clicked: Telegram's start
parameter (``https://t.me/<bot>?start=<code>``; a link with a start parameter of the client's
own is left as it is), or, for WhatsApp and Viber, at the end of the prefilled text (the link's
own, else the configured one): ``… [#<code>]``. Links are found at the click (one listener on
the window, capture phase, so buttons added later count too), and only those of the configured
bot, number or chat URI. The code is asked for when the page has such a link (and the visitor
a session), so that the click sets the href at once, before the page's own handlers see it and
without delaying the navigation, also in a new tab or window. A click that comes before the
code waits for it 700 ms at most, when the link opens in this page, then goes on; a new tab or
window never waits (popup blockers) and goes unchanged. Every click that carries the code is
counted (the same request with the channel, sent with ``keepalive``); its answer, and one asked
when the visitor comes back to the page, brings the code the host gives then (a new one once a
chat has taken the visit's code). Without a session, a code or the channel switched on, a link
stays exactly as it was. Links only: a button that opens a messenger from its own script
(``location.href = …``, ``window.open``) is not seen.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from b24_openlines_plugin.marker import marker_prefix
from hooks.models import Language
from hooks.services import MessengerChannel


@dataclass(frozen=True)
class MessengerLink:
    """Which of the site's links to a messenger get the visit's code."""

    channel: MessengerChannel
    target: str | None = None
    """The bot's username (Telegram, ``@`` and case aside), the number's digits (WhatsApp) or the
    chat URI (Viber) of the client's links; ``None``: any link of that messenger."""
    text: str | None = None
    """The prefilled text before the code (WhatsApp, Viber) for a link that has none of its own."""


_TEMPLATE = r"""<script>
/* Bitrix24 Open Lines → analytics: ties the live chat to the visitor's session. */
(function (config) {
  "use strict";
  // One copy acts per page: a second would write the marker twice and report twice.
  if (window.b24OpenLinesAnalytics) return;
  window.b24OpenLinesAnalytics = true;
  var attached = false;
  function hostSessionId() {
    try {
      var parts = config.getter.split("."), owner = window, value = window;
      for (var i = 0; i < parts.length; i++) {
        owner = value;
        value = value == null ? undefined : value[parts[i]];
      }
      var id = typeof value === "function" ? value.call(owner) : value;
      return typeof id === "string" && id ? id : null;
    } catch (e) { return null; }
  }
  function whenSession(callback, triesLeft) {
    var id = hostSessionId();
    if (id) { callback(id); return; }
    if (triesLeft > 0) setTimeout(function () { whenSession(callback, triesLeft - 1); }, 200);
  }
  function again(body, attempt) {
    if (attempt < 2) setTimeout(function () { send(body, attempt + 1); }, 1000);
  }
  function send(body, attempt) {
    try {
      if (window.fetch) {
        window.fetch(config.endpoint, {
          method: "POST", body: body, keepalive: true, mode: "cors",
          headers: {"content-type": "text/plain"}
        }).then(function (answer) {
          if (answer.status >= 500) again(body, attempt);
        }, function () { again(body, attempt); });
      } else if (navigator.sendBeacon) {
        navigator.sendBeacon(config.endpoint, body);
      }
    } catch (e) { /* the page works on */ }
  }
  function report(openlinesSessionId) {
    var sessionId = Number(openlinesSessionId);
    if (!(sessionId > 0)) return;
    whenSession(function (id) {
      send(JSON.stringify({session_id: id, openlines_session_id: sessionId}), 1);
    }, 50);
  }
  function attach(widget) {
    if (attached || !widget || typeof widget.subscribe !== "function") return;
    attached = true;
    whenSession(function (id) {
      try { widget.setCustomData([{MESSAGE: config.marker + ": " + id}]); } catch (e) {}
    }, 50);
    try {
      var types = window.BX && BX.LiveChatWidget && BX.LiveChatWidget.SubscriptionType;
      widget.subscribe({
        type: (types && types.sessionStart) || "sessionStart",
        callback: function (data) { report(data && data.sessionId); }
      });
    } catch (e) {}
  }
  try {
    window.addEventListener("onBitrixLiveChat", function (event) {
      attach(event && event.detail && event.detail.widget);
    });
    if (window.BXLiveChat) attach(window.BXLiveChat);
  } catch (e) {}

  /* Messenger links: the visit's code in the Telegram, WhatsApp and Viber links clicked. */
  if (!config.codeEndpoint || !config.links || !config.links.length) return;
  var WAIT_MS = 700, CODE = /^[A-Za-z0-9_-]{1,64}$/;
  var TELEGRAM_LINK = /^https?:\/\/(?:www\.)?(?:t|telegram)\.me\/([A-Za-z][A-Za-z0-9_]{3,31})\/?$/i;
  var TELEGRAM_NOT_BOTS = new RegExp("^(joinchat|addstickers|addemoji|addtheme|addlist|proxy|"
    + "socks|share|setlanguage|login|confirmphone|invoice|boost|contact|giftcode|bg)$", "i");
  var WHATSAPP_SEND = /^(?:https?:\/\/(?:api|web)\.whatsapp\.com\/send|whatsapp:\/\/send)\/?$/i;
  var code = null, asking = null, refused = null, replaying = null, scanned = false, asked = 0;
  var written = window.WeakMap ? new WeakMap() : null;
  function decode(text) {
    try { return decodeURIComponent(text.replace(/\+/g, " ")); } catch (e) { return null; }
  }
  function split(href) {
    var hash = "", query = "", at = href.indexOf("#");
    if (at >= 0) { hash = href.slice(at); href = href.slice(0, at); }
    at = href.indexOf("?");
    if (at >= 0) { query = href.slice(at + 1); href = href.slice(0, at); }
    return {base: href, params: query ? query.split("&") : [], hash: hash};
  }
  function named(pair, name) {
    var key = decode(pair.split("=")[0]);
    return key !== null && key.toLowerCase() === name;
  }
  function param(parts, name) {
    for (var i = 0; i < parts.params.length; i++) {
      var pair = parts.params[i], at = pair.indexOf("=");
      if (named(pair, name)) return at < 0 ? "" : decode(pair.slice(at + 1));
    }
    return null;
  }
  function withParam(parts, name, value) {
    var pair = name + "=" + encodeURIComponent(value), params = [], set = false;
    for (var i = 0; i < parts.params.length; i++) {
      if (!named(parts.params[i], name)) params.push(parts.params[i]);
      else if (!set) { params.push(pair); set = true; }
    }
    if (!set) params.push(pair);
    return parts.base + "?" + params.join("&") + parts.hash;
  }
  // What a link is: {channel, target, parts}, or null for any other link.
  function messengerOf(href) {
    var parts = split(href), base = parts.base, m, found = null;
    if ((m = TELEGRAM_LINK.exec(base)) && !TELEGRAM_NOT_BOTS.test(m[1])) {
      found = {channel: "telegram", target: m[1]};
    } else if (/^tg:\/\/resolve\/?$/i.test(base)) {
      found = {channel: "telegram", target: param(parts, "domain")};
    } else if ((m = /^https?:\/\/(?:www\.)?wa\.me\/\+?([0-9]+)\/?$/i.exec(base))) {
      found = {channel: "whatsapp", target: m[1]};
    } else if (WHATSAPP_SEND.test(base)) {
      found = {channel: "whatsapp", target: (param(parts, "phone") || "").replace(/\D/g, "")};
    } else if (/^viber:\/\/pa\/?$/i.test(base)) {
      found = {channel: "viber", target: param(parts, "chaturi")};
    }
    if (!found || !found.target) return null;
    found.parts = parts;
    return found;
  }
  function same(channel, wanted, target) {
    if (channel === "whatsapp") return String(wanted).replace(/\D/g, "") === target;
    if (channel === "telegram") wanted = String(wanted).replace(/^@/, "");
    return String(wanted).toLowerCase() === target.toLowerCase();
  }
  // The configured link this one is, with the link as it was before the script touched it.
  function recognise(link) {
    var href = link.href, mine = written ? written.get(link) : link.b24OpenLinesLink;
    var original = mine && mine.written === href ? mine.original : href;
    var found = messengerOf(original);
    if (!found) return null;
    // A start parameter of the client's own (or a group or app link) is left as it is.
    if (found.channel === "telegram" && (param(found.parts, "start")
        || param(found.parts, "startgroup") !== null || param(found.parts, "startapp") !== null)) {
      return null;
    }
    for (var i = 0; i < config.links.length; i++) {
      var wanted = config.links[i];
      if (wanted.channel === found.channel
          && (wanted.target == null || same(found.channel, wanted.target, found.target))) {
        found.text = wanted.text;
        found.original = original;
        return found;
      }
    }
    return null;
  }
  function rewrite(link, found, value) {
    var href;
    if (found.channel === "telegram") {
      href = withParam(found.parts, "start", value);
    } else {
      var own = param(found.parts, "text"), text = own && own.trim() ? own : (found.text || "");
      href = withParam(found.parts, "text", (text ? text + " " : "") + "[#" + value + "]");
    }
    if (link.href !== href) link.setAttribute("href", href);
    var mine = {original: found.original, written: link.href};
    if (written) written.set(link, mine); else link.b24OpenLinesLink = mine;
  }
  // Asks the host for the visit's code; with a channel, the click is counted too.
  function ask(id, channel, callback) {
    var body = {session_id: id}, mine = {id: id, callbacks: callback ? [callback] : []};
    if (channel) body.channel = channel; else asking = mine;
    asked = new Date().getTime();
    function answer(value) {
      if (value) code = {id: id, value: value};
      else if (!channel) refused = {id: id, at: new Date().getTime()};
      if (asking === mine) asking = null;
      for (var i = 0; i < mine.callbacks.length; i++) {
        try { mine.callbacks[i](value); } catch (e) {}
      }
    }
    try {
      window.fetch(config.codeEndpoint, {
        method: "POST", body: JSON.stringify(body), keepalive: !!channel, mode: "cors",
        headers: {"content-type": "text/plain"}
      }).then(function (response) {
        return response.ok ? response.json() : null;
      }).then(function (data) {
        answer(data && typeof data.code === "string" && CODE.test(data.code) ? data.code : null);
      }, function () { answer(null); });
    } catch (e) { answer(null); }
  }
  function codeOf(id) { return code && code.id === id ? code.value : null; }
  function prefetch() {
    var id = hostSessionId();
    if (!id || codeOf(id) || (asking && asking.id === id)) return;
    // Hovering over a link again asks again, but not at once when the host said no.
    if (refused && refused.id === id && new Date().getTime() - refused.at < 5000) return;
    ask(id, null, null);
  }
  function linkOf(event) {
    var path = event.composedPath ? event.composedPath() : [];
    if (!path.length) for (var n = event.target; n; n = n.parentNode) path.push(n);
    for (var i = 0; i < path.length; i++) {
      var node = path[i];
      if (node && (node.tagName === "A" || node.tagName === "AREA")
          && typeof node.href === "string" && node.hasAttribute("href")) return node;
    }
    return null;
  }
  function opensHere(link, event) {
    var target = (link.getAttribute("target") || "").toLowerCase();
    return event.type === "click" && event.button === 0 && !event.defaultPrevented
      && !(event.ctrlKey || event.metaKey || event.shiftKey || event.altKey)
      && (!target || target === "_self") && !link.hasAttribute("download");
  }
  function clicked(event) {
    try {
      if (event.type === "auxclick" && event.button !== 1) return;
      var link = linkOf(event);
      if (!link || link === replaying) return;
      var found = recognise(link), id = found && hostSessionId();
      if (!id) return;  // not a configured messenger link, or no visit: left as it is
      var ready = codeOf(id);
      if (event.type === "contextmenu") {
        if (ready) rewrite(link, found, ready); else prefetch();
        return;
      }
      if (ready) {  // the usual case: the code came with the page, the href is set right now
        rewrite(link, found, ready);
        ask(id, found.channel, null);
        return;
      }
      if (!opensHere(link, event)) { prefetch(); return; }
      // No code yet: this click waits for it, WAIT_MS at most, then goes on as it would have.
      event.preventDefault();
      event.stopImmediatePropagation();
      var done = false;
      var go = function (value) {
        if (done) return;
        done = true;
        try { if (value) rewrite(link, found, value); } catch (e) {}
        replaying = link;
        try { link.click(); } catch (e) {} finally { replaying = null; }
      };
      setTimeout(function () { go(null); }, WAIT_MS);
      if (asking && asking.id === id) asking.callbacks.push(go);  // whichever answers first
      ask(id, found.channel, go);
    } catch (e) { /* the link works on as it is */ }
  }
  // Back on the page (another tab, or the back button): a chat may have taken the code since.
  function refresh() {
    try {
      var id = hostSessionId();
      if (id && codeOf(id) && document.visibilityState !== "hidden"
          && new Date().getTime() - asked > 10000 && !(asking && asking.id === id)) {
        ask(id, null, null);
      }
    } catch (e) {}
  }
  function approached(event) {
    try {
      var link = linkOf(event);
      if (link && recognise(link)) prefetch();
    } catch (e) {}
  }
  function scan() {
    try {
      if (scanned) return;
      var links = document.links || [];
      for (var i = 0; i < links.length; i++) {
        if (recognise(links[i])) {
          scanned = true;
          whenSession(prefetch, 50);
          return;
        }
      }
    } catch (e) {}
  }
  try {
    if (!window.fetch) return;
    var events = ["click", "auxclick", "contextmenu"];
    for (var i = 0; i < events.length; i++) window.addEventListener(events[i], clicked, true);
    events = ["mouseover", "pointerdown", "touchstart", "focusin"];
    for (i = 0; i < events.length; i++) {
      window.addEventListener(events[i], approached, {capture: true, passive: true});
    }
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
    else scan();
    window.addEventListener("load", scan);
    document.addEventListener("visibilitychange", refresh);
    window.addEventListener("pageshow", function (event) { if (event.persisted) refresh(); });
    setTimeout(scan, 2000);
    setTimeout(scan, 6000);
  } catch (e) {}
})(%s);
</script>"""


def _js_json(value: object) -> str:
    """JSON that cannot end the <script> element or break out of it, whatever it contains."""
    text = json.dumps(value, ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_site_script(
    *,
    endpoint: str,
    getter: str,
    language: Language,
    code_endpoint: str | None = None,
    links: Sequence[MessengerLink] = (),
) -> str:
    """The script for the integration's sites; ``code_endpoint`` and ``links`` add the codes to
    messenger links (without both, the script is the same as without them)."""
    config: dict[str, object] = {
        "endpoint": endpoint,
        "getter": getter,
        "marker": marker_prefix(language),
    }
    if code_endpoint and links:
        config["codeEndpoint"] = code_endpoint
        config["links"] = [
            {"channel": link.channel, "target": link.target, "text": link.text} for link in links
        ]
    return _TEMPLATE % _js_json(config)
