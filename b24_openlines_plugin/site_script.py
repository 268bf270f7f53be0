"""The script a client installs on every page that carries the Bitrix24 live-chat widget.

It ties a site chat to the visitor's session at the analytics host, twice over: it writes the
host's session id into the chat (``setCustomData``, so it appears in the transcript) and it
reports the pair {host session, Open Lines session} to the host when the dialog starts. The
code is a fixed template; the only variable part is a JSON config, escaped for a <script>.
"""

from __future__ import annotations

import json
import re

SESSION_MARKER = "Analytics session"
"""What precedes the host session id in the chat's first message: ``Analytics session: <id>``."""

_MARKED = re.compile(re.escape(SESSION_MARKER) + r":\s*([A-Za-z0-9_-]{8,64})")

_TEMPLATE = """<script>
/* Bitrix24 Open Lines → analytics: ties the live chat to the visitor's session. */
(function (config) {
  "use strict";
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
})(%s);
</script>"""


def _js_json(value: object) -> str:
    """JSON that cannot end the <script> element or break out of it, whatever it contains."""
    text = json.dumps(value, ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_site_script(*, endpoint: str, getter: str) -> str:
    return _TEMPLATE % _js_json({"endpoint": endpoint, "getter": getter, "marker": SESSION_MARKER})


def session_in_text(text: str) -> str | None:
    """The host session id the script put into a chat, if this text carries it."""
    match = _MARKED.search(text)
    return match[1] if match else None
