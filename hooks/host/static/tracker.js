/*
 * The reference host's visitor tracker. Install it on every page of the site, before any
 * plugin script. It records the landing page (with its UTM tags) as a visitor session and
 * exposes the session id to other scripts through a documented getter:
 *
 *   window.analyticsHost.getSessionId()   -> the visitor session id, or null until known
 *   window.analyticsHost.onSession(fn)    -> calls fn(sessionId) once it is known
 *
 * A new session starts on a visit with UTM tags, or after 30 minutes without a page view.
 * The id is the host's, signed: scripts pass it on as it is.
 * It never throws into the page.
 */
(function () {
  "use strict";
  var KEY = "analyticsHost.session";
  var IDLE_MS = 30 * 60 * 1000;
  var SIGNED = /^[A-Za-z0-9_-]{44}$/; // the host's signed ids; an older unsigned one starts anew
  var script = document.currentScript;
  var base = script && script.src ? new URL(script.src).origin : "";
  var waiting = [];
  var api = window.analyticsHost = window.analyticsHost || {};
  var sessionId = null;

  function read() {
    try { return JSON.parse(window.localStorage.getItem(KEY) || "null"); } catch (e) { return null; }
  }
  function write(id) {
    try { window.localStorage.setItem(KEY, JSON.stringify({ id: id, seen: Date.now() })); } catch (e) { /* private mode */ }
  }
  function settle(id) {
    sessionId = id;
    write(id);
    var callbacks = waiting; waiting = [];
    callbacks.forEach(function (fn) { try { fn(id); } catch (e) { /* a listener's bug is its own */ } });
  }
  api.getSessionId = function () { return sessionId; };
  api.onSession = function (fn) { if (sessionId) { try { fn(sessionId); } catch (e) {} } else { waiting.push(fn); } };

  try {
    var stored = read();
    var tagged = /[?&]utm_[a-z]+=/.test(window.location.search);
    if (stored && SIGNED.test(stored.id) && !tagged && Date.now() - stored.seen < IDLE_MS) {
      settle(stored.id);
      return;
    }
    var body = JSON.stringify({ url: window.location.href, referrer: document.referrer || null });
    fetch(base + "/api/visits", { method: "POST", body: body, headers: { "content-type": "text/plain" }, keepalive: true })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data && data.session_id) settle(data.session_id); })
      .catch(function () { /* the host is unreachable: the page works on */ });
  } catch (e) { /* never break the page */ }
})();
