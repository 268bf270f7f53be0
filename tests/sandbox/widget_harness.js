// Runs the sandbox's widget.js under node with a tiny fake DOM and a fake fetch, drives it the
// way a page and a visitor would, and prints what it saw as JSON (test_site.py reads it).
// Usage: node widget_harness.js path/to/widget.js
'use strict';
const fs = require('fs');
const vm = require('vm');

class FakeElement {
  constructor(tag) {
    this.tagName = tag.toUpperCase();
    this.children = [];
    this.attributes = {};
    this.listeners = {};
    this.style = {};
    this.textContent = '';
    this.value = '';
  }
  setAttribute(name, value) {
    this.attributes[name] = String(value);
    if (name === 'id') this.id = String(value);
    if (name === 'style') this.style.display = /display:none/.test(value) ? 'none' : '';
  }
  getAttribute(name) { return name in this.attributes ? this.attributes[name] : null; }
  appendChild(child) { this.children.push(child); return child; }
  addEventListener(type, listener) { (this.listeners[type] = this.listeners[type] || []).push(listener); }
  fire(type, event) { for (const l of this.listeners[type] || []) l(Object.assign({type}, event)); }
  find(id) {
    if (this.id === id) return this;
    for (const child of this.children) { const hit = child.find(id); if (hit) return hit; }
    return null;
  }
}

const seen = {requests: [], events: [], warnings: []};
const windowListeners = {};
const document = {
  readyState: 'complete',
  documentElement: {lang: 'en'},
  body: new FakeElement('body'),
  currentScript: {src: 'http://127.0.0.1:8100/sandbox/widget.js?line=1&29000000', getAttribute: () => null},
  createElement: (tag) => new FakeElement(tag),
  addEventListener: () => {},
};
let chatsStarted = 0;
let dialogClosed = false; // then the next message meets 409, as after the operator closed it
const sandbox = {
  document,
  location: {href: 'http://127.0.0.1:8100/site/landing?utm_source=yandex', origin: 'http://127.0.0.1:8100'},
  console: {warn: (...args) => seen.warnings.push(args.map(String).join(' ')), log: () => {}},
  setTimeout, Promise, JSON,
  CustomEvent: class { constructor(type, init) { this.type = type; this.detail = init.detail; } },
  addEventListener: (type, listener) => { (windowListeners[type] = windowListeners[type] || []).push(listener); },
  dispatchEvent: (event) => {
    for (const l of windowListeners[event.type] || []) { try { l(event); } catch (e) { /* as a browser */ } }
    return true;
  },
  fetch: (url, init) => {
    seen.requests.push({url, body: JSON.parse(init.body)});
    const started = url.endsWith('/sandbox/api/chats');
    if (started) chatsStarted += 1;
    if (dialogClosed && url.endsWith('/messages')) {
      dialogClosed = false;
      return Promise.resolve({ok: false, status: 409, json: () => Promise.resolve({detail: 'closed'})});
    }
    const session = url.endsWith('/sessions') ? 6 : 5;
    const chat = {chat_id: 3, session_id: session, client_chat_id: 2, guest_user_id: 11};
    return Promise.resolve({ok: true, status: started ? 201 : 200, json: () => Promise.resolve(chat)});
  },
};
sandbox.window = sandbox;
vm.createContext(sandbox);

sandbox.addEventListener('onBitrixLiveChat', (event) => {
  const widget = event.detail.widget;
  seen.detail = Object.keys(event.detail).sort();
  seen.sameAsGlobal = widget === sandbox.BXLiveChat;
  seen.widgetHost = event.detail.widgetHost;
  seen.unknownSubscription = widget.subscribe({type: 'nonsense', callback: () => {}});
  seen.badCustomData = widget.setCustomData(42);
  seen.badRegisterData = widget.setUserRegisterData('Ann');
  widget.setUserRegisterData({name: 'Ann', lastName: 'Young', hash: 'not-a-hash', foo: 'bar'});
  widget.setCustomData('Analytics session: abcdef123456');
  widget.setCustomData([{GRID: [{NAME: 'Visit', VALUE: 'v1', DISPLAY: 'LINE'}]}, 'dropped']);
  widget.subscribe({type: 'every', callback: (e) => seen.events.push(e)});
  const off = widget.subscribe({type: 'configLoaded', callback: () => { throw new Error('page bug'); }});
  seen.unsubscribeIsFunction = typeof off === 'function';
  widget.subscribe({type: 'sessionStart', callback: (data) => { seen.sessionStart = data; }});
});

vm.runInContext(fs.readFileSync(process.argv[2], 'utf8'), sandbox, {filename: 'widget.js'});

const settle = () => new Promise((resolve) => setTimeout(resolve, 30));
(async () => {
  seen.types = Object.keys(sandbox.BX.LiveChatWidget.SubscriptionType);
  seen.globalBeforeBoot = typeof sandbox.BXLiveChat;
  await new Promise((resolve) => setTimeout(resolve, 150));
  const body = document.body;
  body.find('b24-widget-button').fire('click');
  seen.panelOpen = body.find('b24-widget').style.display;
  body.find('b24-phone').value = '+7 999 000-11-22';
  body.find('b24-message').value = 'Hello, is the chair in stock?';
  body.find('b24-send').fire('click');
  body.find('b24-message').value = 'And delivery?';
  body.find('b24-message').fire('keydown', {key: 'Enter', shiftKey: false, preventDefault() {}});
  await settle();
  seen.chatsStarted = chatsStarted;
  seen.userData = sandbox.BXLiveChat.getUserData();
  dialogClosed = true;
  body.find('b24-message').value = 'Back again';
  body.find('b24-send').fire('click');
  await settle();
  seen.sessionId = sandbox.BXLiveChat.getSessionId();
  seen.panelSession = body.find('b24-widget').getAttribute('data-session-id');
  seen.messages = body.find('b24-messages').children.map((li) => [li.textContent, li.getAttribute('data-status')]);
  process.stdout.write(JSON.stringify(seen));
})();
