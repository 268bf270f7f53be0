"""The script a client installs on every page that carries the Bitrix24 live-chat widget.

It gives the widget the visitor's host session id, signed by the host, as custom data
(``setCustomData``): Bitrix24 keeps the latest a page sent and writes it into each dialog once,
when the dialog is created, as the operator-facing line ``<marker>: <id>`` in the host's
language (``marker``). That line is what attributes the dialog. The script also reports the pair
{host session, Open Lines session} when the dialog starts, a claim the host keeps
(``sessions``). It acts once per page, however many copies of it the page carries. The code is
a fixed template; the only variable part is a JSON config, escaped for a <script>.
"""

from __future__ import annotations

import json

from b24_openlines_plugin.marker import marker_prefix
from hooks.models import Language

_TEMPLATE = """<script>
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
})(%s);
</script>"""


def _js_json(value: object) -> str:
    """JSON that cannot end the <script> element or break out of it, whatever it contains."""
    text = json.dumps(value, ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_site_script(*, endpoint: str, getter: str, language: Language) -> str:
    config = {"endpoint": endpoint, "getter": getter, "marker": marker_prefix(language)}
    return _TEMPLATE % _js_json(config)
