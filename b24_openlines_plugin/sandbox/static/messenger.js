/*
 * The sandbox's messenger emulator, on the demo site only (not part of any client's site).
 *
 * Nothing leaves loopback: a click on a Telegram, WhatsApp or Viber link opens the sandbox's
 * emulator (/sandbox/messenger?link=...) with the link as it finally is, instead of the
 * messenger. It listens on the window in the bubbling phase, so it runs after every other click
 * handler of the page, the site script's (window, capture phase) included, and leaves alone a
 * click that one of them prevented. A new tab or window (target, Ctrl/Cmd/Shift, middle button)
 * gets the emulator in a new tab or window.
 */
(function (window) {
  'use strict';

  var MESSENGER = /^(?:https?:\/\/(?:www\.)?(?:t\.me|telegram\.me|wa\.me|api\.whatsapp\.com|web\.whatsapp\.com)\/|tg:|whatsapp:|viber:)/i;

  function linkOf(event) {
    var path = event.composedPath ? event.composedPath() : [];
    for (var i = 0; i < path.length; i++) {
      var node = path[i];
      if (node && (node.tagName === 'A' || node.tagName === 'AREA') && typeof node.href === 'string') {
        return node;
      }
    }
    return null;
  }

  function caught(event) {
    try {
      if (event.defaultPrevented || (event.type === 'auxclick' && event.button !== 1)) { return; }
      var link = linkOf(event);
      if (!link || !MESSENGER.test(link.href)) { return; }
      event.preventDefault();
      var url = '/sandbox/messenger?link=' + encodeURIComponent(link.href);
      var target = link.getAttribute('target') || '';
      var apart = event.type === 'auxclick' || event.ctrlKey || event.metaKey || event.shiftKey;
      if (apart || (target && target !== '_self')) {
        window.open(url, apart ? '_blank' : target);
      } else {
        window.location.assign(url);
      }
    } catch (e) { /* the sandbox's helper never breaks the page */ }
  }

  window.addEventListener('click', caught, false);
  window.addEventListener('auxclick', caught, false);
})(window);
