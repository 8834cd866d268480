// Broadcast chat client: posts {name, message} and shows every message the
// server broadcasts, newest first. Reconnects by itself (exponential
// backoff with jitter). User text only ever goes through textContent.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const nameInput = $('name'), messageInput = $('message'), post = $('btn_post');
  const chat = $('chat'), status = $('status'), notice = $('notice');
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
  const MAX_SHOWN = 200;
  let ws = null, attempt = 0, retry = null;

  nameInput.value = localStorage.getItem('chat.name') || '';

  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
    post.disabled = state !== 'open';
  }

  function say(text) {
    notice.textContent = text;
    notice.hidden = !text;
  }

  function connect() {
    clearTimeout(retry);
    retry = null;
    setStatus('connecting', 'connecting…');
    const sock = new WebSocket(url);
    ws = sock;
    sock.onopen = () => { attempt = 0; setStatus('open', 'connected'); };
    sock.onmessage = (ev) => { if (sock === ws) receive(ev.data); };
    sock.onclose = () => { if (sock === ws) { ws = null; reconnectLater(); } };
  }

  // 0.5 s, 1 s, 2 s … up to 8 s, each picked at random in its upper half
  // so that many pages do not all come back in the same instant.
  function reconnectLater() {
    const ceiling = Math.min(8000, 500 * 2 ** attempt++);
    const delay = ceiling / 2 + Math.random() * ceiling / 2;
    setStatus('closed', 'offline, retrying in ' + Math.ceil(delay / 1000) + ' s');
    retry = setTimeout(connect, delay);
  }
  window.addEventListener('online', () => { if (!ws) connect(); });

  function receive(data) {
    let msg;
    try { msg = JSON.parse(data); } catch (e) { return; }
    if (msg.type === 'message') show(String(msg.name), String(msg.message));
    else if (msg.type === 'presence') $('online').textContent = msg.online + ' online';
    else if (msg.type === 'error') say('Not sent: ' + msg.error);
  }

  function show(name, message) {
    const li = document.createElement('li');
    const who = document.createElement('span');
    const what = document.createElement('span');
    who.className = 'who';
    who.textContent = name;
    what.className = 'what';
    what.textContent = message;
    li.append(who, ' : ', what);
    if (name === nameInput.value.trim()) li.className = 'mine';
    li.title = new Date().toLocaleTimeString();
    chat.prepend(li);
    while (chat.children.length > MAX_SHOWN) chat.lastElementChild.remove();
    $('empty').hidden = true;
  }

  function send() {
    const name = nameInput.value.trim(), message = messageInput.value.trim();
    if (!name) { say('Pick a name first.'); nameInput.focus(); return; }
    if (!message) { messageInput.focus(); return; }
    if (!ws || ws.readyState !== WebSocket.OPEN) { say('Not connected yet; your message is kept.'); return; }
    ws.send(JSON.stringify({ name, message }));
    localStorage.setItem('chat.name', name);
    messageInput.value = '';
    messageInput.focus();
    say('');
  }

  post.addEventListener('click', send);
  // isComposing: Enter that confirms an IME (CJK) composition is not a post
  messageInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.isComposing) { e.preventDefault(); send(); }
  });
  nameInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.isComposing) { e.preventDefault(); messageInput.focus(); }
  });
  connect();
  (nameInput.value ? messageInput : nameInput).focus();
})();
