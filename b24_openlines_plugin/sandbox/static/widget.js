/*
 * The sandbox's stand-in for the Bitrix24 live-chat widget (site button → Open Lines chat).
 *
 * Same surface as Bitrix24's on its documented parts: BX.LiveChatWidget and its SubscriptionType,
 * a global BXLiveChat made asynchronously (as the real loader does), then the 'onBitrixLiveChat'
 * event; open, close, setCustomData, setUserRegisterData, getUserData, subscribe, start. The
 * visitor's first message starts a livechat chat through the sandbox's JSON API (the origin this
 * file came from). As Bitrix24's, the widget remembers its guest and chat across the site's
 * pages (localStorage), so the dialog goes on from page to page, and each page sends its custom
 * data once, with its first request (Bitrix24: user.register, then widget.dialog.get): the
 * portal keeps the latest for the guest's next dialog. Element ids (#b24-*) are stable for
 * browser tests. Plain JS, no dependencies; it never throws into the page.
 */
(function (window, document) {
  'use strict';

  var BX = window.BX = window.BX || {};
  if (BX.LiveChatWidget && BX.LiveChatWidget.sandbox) {
    return; // loaded twice: the first copy serves
  }

  var script = document.currentScript;
  var src = (script && script.src) || '';
  var at = src.indexOf('/sandbox/widget.js');
  var base = at > 0 ? src.slice(0, at) : window.location.origin;
  var lineId = lineOf(script, src);

  var TYPES = [
    'configLoaded', 'widgetOpen', 'widgetClose', 'sessionStart', 'sessionOperatorChange',
    'sessionFinish', 'operatorMessage', 'userForm', 'userMessage', 'userFile', 'userVote', 'every'
  ];
  var USER_FIELDS = ['hash', 'name', 'lastName', 'avatar', 'email', 'www', 'gender', 'position'];
  var LABELS = /^ru/i.test(document.documentElement && document.documentElement.lang || '')
    ? {button: 'Чат', title: 'Онлайн-чат', name: 'Имя', phone: 'Телефон', email: 'E-mail',
       message: 'Сообщение', send: 'Отправить', error: 'не отправлено'}
    : {button: 'Chat', title: 'Online chat', name: 'Name', phone: 'Phone', email: 'E-mail',
       message: 'Message', send: 'Send', error: 'not sent'};

  function lineOf(node, url) {
    var raw = (node && node.getAttribute && node.getAttribute('data-line')) || '';
    var query = /[?&]line=(\d+)/.exec(url);
    var id = parseInt(raw || (query && query[1]) || '', 10);
    return id > 0 ? id : 1;
  }

  function warn() {
    try { window.console.warn.apply(window.console, arguments); } catch (e) { /* no console */ }
  }

  /* Wraps a public method: an error is logged and the call answers false, as Bitrix24's do. */
  function safely(method) {
    return function () {
      try { return method.apply(this, arguments); } catch (e) {
        warn('LiveChatWidget (sandbox):', e);
        return false;
      }
    };
  }

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    for (var key in attributes) {
      if (Object.prototype.hasOwnProperty.call(attributes, key)) {
        node.setAttribute(key, attributes[key]);
      }
    }
    if (text) { node.textContent = text; }
    return node;
  }

  function randomHash() {
    var hex = '';
    for (var i = 0; i < 32; i++) { hex += Math.floor(Math.random() * 16).toString(16); }
    return hex;
  }

  /* POSTs JSON to the sandbox API; resolves with the answer's JSON, rejects with .status set. */
  function post(path, body) {
    if (typeof window.fetch !== 'function') {
      return Promise.reject(new Error('fetch is not available'));
    }
    return window.fetch(base + path, {
      method: 'POST',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify(body),
      credentials: 'same-origin'
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (data) {
        if (response.ok) { return data; }
        var detail = data && data.detail;
        var error = new Error(typeof detail === 'string' ? detail
          : detail ? JSON.stringify(detail) : 'HTTP ' + response.status);
        error.status = response.status;
        throw error;
      });
    });
  }

  function LiveChatWidget(config) {
    config = config || {};
    this.host = config.host || base;
    this.code = config.code || 'sandbox_line_' + lineId;
    this.lineId = config.lineId || lineId;
    this.customData = [];
    this.userRegisterData = {};
    this.user = {id: 0, hash: ''};
    this.subscribers = [];
    this.chatId = 0; // the sandbox API's chat (the operators' chat)
    this.clientChatId = 0; // the widget's own chat: what Bitrix24's internal getChatId() gives
    this.sessionId = 0;
    this.opened = false;
    this.ui = null;
    this.queue = Promise.resolve();
    this.sent = 0;
    this.dataSent = false; // this page's custom data went with a request
    this._restore();
  }

  var proto = LiveChatWidget.prototype;

  proto.open = safely(function () {
    this._render();
    this.ui.panel.style.display = 'block';
    if (!this.opened) {
      this.opened = true;
      this._fire('widgetOpen', {});
    }
    return true;
  });

  proto.close = safely(function () {
    if (this.ui) { this.ui.panel.style.display = 'none'; }
    if (this.opened) {
      this.opened = false;
      this._fire('widgetClose', {});
    }
    return true;
  });

  proto.start = safely(function () { return true; });
  proto.showNotification = safely(function () { return true; });
  proto.addLocalize = safely(function () { return true; });
  proto.mutateTemplateComponent = safely(function () { return true; });

  /* A string is [{MESSAGE: x}]; an array keeps its object elements; each call appends. */
  proto.setCustomData = safely(function (params) {
    var blocks = [];
    if (typeof params === 'string') {
      blocks.push({MESSAGE: params});
    } else if (params && typeof params === 'object' && params.length > 0) {
      for (var i = 0; i < params.length; i++) {
        if (params[i] && typeof params[i] === 'object') { blocks.push(params[i]); }
      }
    } else {
      warn('LiveChatWidget.setCustomData: params is not a string or an array');
      return false;
    }
    this.customData = this.customData.concat(blocks);
    return true;
  });

  /* Only Bitrix24's keys are kept; a hash must be 32 lower-case hex digits. Each call replaces. */
  proto.setUserRegisterData = safely(function (params) {
    if (!params || typeof params !== 'object' || params.length !== undefined) {
      warn('LiveChatWidget.setUserData: params is not a object');
      return false;
    }
    var data = {};
    for (var i = 0; i < USER_FIELDS.length; i++) {
      var field = USER_FIELDS[i];
      if (params[field]) { data[field] = String(params[field]); }
    }
    if (data.hash && !/^[a-f0-9]{32}$/.test(data.hash)) {
      warn('LiveChatWidget.setUserRegisterData: the hash is not 32 hex digits, ignored');
      delete data.hash;
    }
    this.userRegisterData = data;
    return true;
  });

  proto.getUserData = safely(function () {
    var data = {id: this.user.id, hash: this.user.hash};
    for (var i = 1; i < USER_FIELDS.length; i++) {
      data[USER_FIELDS[i]] = this.userRegisterData[USER_FIELDS[i]] || '';
    }
    return data;
  });

  /* Returns the unsubscribe function, or false for an unknown type or a missing callback. */
  proto.subscribe = safely(function (params) {
    if (!params || TYPES.indexOf(params.type) < 0 || typeof params.callback !== 'function') {
      warn('LiveChatWidget.subscribe: unknown type or no callback', params);
      return false;
    }
    var self = this;
    var subscriber = {type: params.type, callback: params.callback};
    this.subscribers.push(subscriber);
    return function () {
      var index = self.subscribers.indexOf(subscriber);
      if (index >= 0) { self.subscribers.splice(index, 1); }
    };
  });

  proto._storageKey = function () { return 'b24-sandbox-widget:' + this.code; };

  /* The guest and chat of an earlier page of the site, if this browser has them. */
  proto._restore = function () {
    try {
      var kept = JSON.parse(window.localStorage.getItem(this._storageKey()) || 'null');
      if (kept && kept.chatId > 0) {
        this.chatId = kept.chatId;
        this.clientChatId = kept.clientChatId || 0;
        this.sessionId = kept.sessionId || 0;
        this.user = kept.user || this.user;
      }
    } catch (e) { /* no storage: every page starts anew */ }
  };

  proto._keep = function () {
    try {
      window.localStorage.setItem(this._storageKey(), JSON.stringify({
        chatId: this.chatId, clientChatId: this.clientChatId, sessionId: this.sessionId,
        user: this.user
      }));
    } catch (e) { /* private mode */ }
  };

  /* What setCustomData() collected, else Bitrix24's default: the page's address. */
  proto._customData = function () {
    return this.customData.length ? this.customData
      : [{MESSAGE: 'Site: ' + window.location.href}]; // Bitrix24's default (newer: [URL]…[/URL])
  };

  /* A request body, with this page's custom data if no request of the page carried it yet. */
  proto._withPageData = function (body) {
    if (!this.dataSent) {
      this.dataSent = true;
      body.custom_data = this._customData();
    }
    return body;
  };

  /* Internal in Bitrix24 too; handy for tests. */
  proto.getChatId = function () { return this.clientChatId; };
  proto.getSessionId = function () { return this.sessionId; };

  proto._fire = function (type, data) {
    var listeners = this.subscribers.slice();
    for (var i = 0; i < listeners.length; i++) {
      var subscriber = listeners[i];
      if (subscriber.type !== type && subscriber.type !== 'every') { continue; }
      try {
        subscriber.callback(subscriber.type === 'every' ? {type: type, data: data} : data);
      } catch (e) {
        warn('LiveChatWidget: a ' + type + ' subscriber failed:', e);
      }
    }
  };

  proto._render = function () {
    if (this.ui || !document.body) { return; }
    var self = this;
    var ui = {};
    ui.button = element('button', {
      id: 'b24-widget-button', type: 'button', 'aria-label': LABELS.title,
      style: 'position:fixed;right:24px;bottom:24px;width:64px;height:64px;border-radius:50%;' +
        'border:0;background:#2fc6f6;color:#fff;font:600 14px system-ui,sans-serif;' +
        'cursor:pointer;box-shadow:0 4px 12px rgba(0,0,0,.25);z-index:2147483000'
    }, LABELS.button);
    ui.panel = element('div', {
      id: 'b24-widget', role: 'dialog', 'aria-label': LABELS.title,
      'data-line-id': String(this.lineId),
      style: 'display:none;position:fixed;right:24px;bottom:100px;width:320px;padding:12px;' +
        'background:#fff;border-radius:8px;box-shadow:0 4px 18px rgba(0,0,0,.25);' +
        'font:14px/1.4 system-ui,sans-serif;color:#333;z-index:2147483000'
    });
    var head = element('div', {style: 'display:flex;justify-content:space-between'});
    head.appendChild(element('b', {}, LABELS.title));
    ui.close = element('button', {id: 'b24-close', type: 'button', 'aria-label': 'close'}, '×');
    head.appendChild(ui.close);
    ui.panel.appendChild(head);
    ui.messages = element('ul', {
      id: 'b24-messages', style: 'list-style:none;padding:0;max-height:200px;overflow:auto'
    });
    ui.panel.appendChild(ui.messages);
    var fieldStyle = 'display:block;width:100%;box-sizing:border-box;margin:4px 0;padding:4px';
    ui.name = element('input', {id: 'b24-name', type: 'text', placeholder: LABELS.name,
      autocomplete: 'name', style: fieldStyle});
    ui.phone = element('input', {id: 'b24-phone', type: 'tel', placeholder: LABELS.phone,
      autocomplete: 'tel', style: fieldStyle});
    ui.email = element('input', {id: 'b24-email', type: 'email', placeholder: LABELS.email,
      autocomplete: 'email', style: fieldStyle});
    ui.message = element('textarea', {id: 'b24-message', rows: '3', placeholder: LABELS.message,
      style: fieldStyle});
    ui.send = element('button', {id: 'b24-send', type: 'button'}, LABELS.send);
    var parts = [ui.name, ui.phone, ui.email, ui.message, ui.send];
    for (var i = 0; i < parts.length; i++) { ui.panel.appendChild(parts[i]); }
    document.body.appendChild(ui.panel);
    document.body.appendChild(ui.button);
    this.ui = ui;

    ui.button.addEventListener('click', function () {
      if (self.opened) { self.close(); } else { self.open(); }
    });
    ui.close.addEventListener('click', function () { self.close(); });
    ui.send.addEventListener('click', function () { self._submit(); });
    ui.message.addEventListener('keydown', function (event) {
      if (event.key === 'Enter' && !event.shiftKey) {
        if (event.preventDefault) { event.preventDefault(); }
        self._submit();
      }
    });
  };

  proto._submit = function () {
    try {
      var text = String(this.ui.message.value || '').trim();
      if (!text) { return; }
      this.ui.message.value = '';
      this._send(text);
    } catch (e) {
      warn('LiveChatWidget (sandbox): sending failed:', e);
    }
  };

  /* Shows the message, tells userMessage subscribers, and delivers in order of sending. */
  proto._send = function (text) {
    var self = this;
    var id = 'temporary' + (++this.sent);
    var item = element('li', {
      'class': 'b24-message', 'data-author': 'visitor', 'data-id': id, 'data-status': 'sending',
      style: 'margin:4px 0 4px 40px;padding:6px 8px;border-radius:8px;background:#e3f6fd'
    }, text);
    this.ui.messages.appendChild(item);
    this._fire('userMessage', {id: id, text: text});
    this.queue = this.queue
      .then(function () { return self._deliver(text); })
      .then(function () {
        item.setAttribute('data-status', 'sent');
      }, function (error) {
        item.setAttribute('data-status', 'error');
        item.setAttribute('title', String(error && error.message || error));
        item.textContent = text + ' (' + LABELS.error + ')';
        warn('LiveChatWidget (sandbox): the message was not delivered:', error);
      })
      .catch(function () { /* the page works on */ });
  };

  proto._deliver = function (text) {
    var self = this;
    var messages = [{author: 'visitor', text: text}];
    var took = function (chat) { self._took(chat); };
    if (!this.chatId) {
      return post('/sandbox/api/chats', this._startBody(messages)).then(took);
    }
    var body = this._withPageData({messages: messages});
    return post('/sandbox/api/chats/' + this.chatId + '/messages', body)
      .then(took, function (error) {
        if (error.status === 404) {
          // A chat remembered from a sandbox that has since restarted: start anew.
          self.chatId = 0;
          self.sessionId = 0;
          return post('/sandbox/api/chats', self._startBody(messages)).then(took);
        }
        if (error.status !== 409) { throw error; }
        // The dialog was closed: the next message opens a new session in the same chat.
        // (Bitrix24 tells sessionFinish when the operator closes; the sandbox learns it here.)
        self._fire('sessionFinish', {sessionId: self.sessionId});
        return post('/sandbox/api/chats/' + self.chatId + '/sessions', {messages: messages})
          .then(took);
      });
  };

  /* The body of POST /sandbox/api/chats: what Bitrix24 registers for a new livechat guest. */
  proto._startBody = function (messages) {
    this.dataSent = true;
    return {
      connector: 'livechat',
      line_id: this.lineId,
      visitor: this._visitor(),
      messages: messages,
      custom_data: this._customData()
    };
  };

  /* The form's fields, else what setUserRegisterData() gave; null when there is nothing. */
  proto._visitor = function () {
    var ui = this.ui;
    var known = this.userRegisterData;
    var value = function (input) { return String(input && input.value || '').trim(); };
    var name = value(ui.name) || [known.name, known.lastName].filter(Boolean).join(' ');
    var phone = value(ui.phone);
    var email = value(ui.email) || known.email || '';
    if (!name && !phone && !email) { return null; }
    return {name: name || null, phone: phone || null, email: email || null};
  };

  proto._took = function (chat) {
    if (!chat) { return; }
    this.chatId = chat.chat_id;
    this.clientChatId = chat.client_chat_id || 0;
    if (!this.user.id) {
      this.user = {id: chat.guest_user_id, hash: this.userRegisterData.hash || randomHash()};
    }
    var started = chat.session_id && chat.session_id !== this.sessionId;
    this.sessionId = chat.session_id || this.sessionId;
    this._keep();
    this.ui.panel.setAttribute('data-chat-id', String(this.chatId));
    this.ui.panel.setAttribute('data-session-id', String(this.sessionId));
    if (started) { this._fire('sessionStart', {sessionId: this.sessionId}); }
  };

  LiveChatWidget.sandbox = true;
  LiveChatWidget.SubscriptionType = {};
  for (var t = 0; t < TYPES.length; t++) { LiveChatWidget.SubscriptionType[TYPES[t]] = TYPES[t]; }
  BX.LiveChatWidget = LiveChatWidget;
  BX.LiveChat = BX.LiveChat || {
    openLiveChat: function () { return window.BXLiveChat ? window.BXLiveChat.open() : false; },
    closeLiveChat: function () { return window.BXLiveChat ? window.BXLiveChat.close() : false; }
  };

  function boot() {
    try {
      var widget = new LiveChatWidget({host: base, code: 'sandbox_line_' + lineId, lineId: lineId});
      window.BXLiveChat = widget;
      widget._render();
      window.dispatchEvent(new window.CustomEvent('onBitrixLiveChat', {
        detail: {widget: widget, widgetCode: widget.code, widgetHost: widget.host}
      }));
      window.setTimeout(function () { widget._fire('configLoaded', {}); }, 0);
    } catch (e) {
      warn('LiveChatWidget (sandbox): could not start:', e);
    }
  }

  // Bitrix24's widget appears a moment after its loader, once its config has come.
  window.setTimeout(function () {
    if (document.readyState === 'loading') {
      document.addEventListener('DOMContentLoaded', boot);
    } else {
      boot();
    }
  }, 80);
})(window, document);
