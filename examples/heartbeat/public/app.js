// Heartbeat client for the browser. The browser's WebSocket cannot send
// protocol pings, so the page runs an application heartbeat: "ping" every
// 3 s, and the server (app_heartbeat option) answers "pong". A connection
// that misses an answer for 2 s is treated as dead: the page stops using it
// at once (a dead TCP connection may take minutes to report its close) and
// reconnects with exponential backoff and jitter; a connection attempt that
// gets no answer within 5 s is given up too. Text only ever goes through
// textContent.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const status = $('status'), rttBox = $('rtt'), logList = $('log');
  const input = $('message'), send = $('btn_send');
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
  const PING_EVERY = 3000, PONG_WITHIN = 2000, CONNECT_WITHIN = 5000, MAX_LOG = 100;
  let ws = null, attempt = 0, retry = null, pingTimer = null, deadline = null, sentAt = 0;
  let connectTimer = null, everOpen = false;

  function log(text) {
    const li = document.createElement('li');
    li.textContent = new Date().toLocaleTimeString() + '  ' + text;
    logList.prepend(li);
    while (logList.children.length > MAX_LOG) logList.lastChild.remove();
  }

  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
    send.disabled = state !== 'open';
  }

  function connect() {
    clearTimeout(retry);
    retry = null;
    // once it has been up, the page stays "offline" until it is back
    if (everOpen) setStatus('closed', 'offline, reconnecting…');
    else setStatus('connecting', 'connecting…');
    const sock = new WebSocket(url);
    ws = sock;
    // a server that accepts TCP but never answers (stopped, overloaded)
    // would leave this socket connecting for minutes
    connectTimer = setTimeout(() => {
      if (sock !== ws) return;
      log('no answer within ' + CONNECT_WITHIN + ' ms');
      lost();
      sock.close();
    }, CONNECT_WITHIN);
    sock.onopen = () => {
      if (sock !== ws) return;
      clearTimeout(connectTimer);
      everOpen = true;
      attempt = 0;
      setStatus('open', 'connected');
      log('connected');
      ping();
      pingTimer = setInterval(ping, PING_EVERY);
    };
    sock.onmessage = (ev) => {
      if (sock !== ws) return;
      if (ev.data === 'pong') {
        clearTimeout(deadline);
        deadline = null;
        const rtt = performance.now() - sentAt;
        rttBox.textContent = 'rtt ' + rtt.toFixed(1) + ' ms';
        log('pong after ' + rtt.toFixed(1) + ' ms');
      } else {
        log('echo: ' + ev.data);
      }
    };
    sock.onclose = (ev) => {
      if (sock !== ws) return;   // already given up on
      log('closed (' + ev.code + (ev.reason ? ' ' + ev.reason : '') + ')');
      lost();
    };
  }

  function ping() {
    if (!ws || ws.readyState !== WebSocket.OPEN || deadline) return;
    sentAt = performance.now();
    ws.send('ping');
    deadline = setTimeout(() => {
      log('no pong within ' + PONG_WITHIN + ' ms: the connection is dead');
      const dead = ws;
      lost();
      dead.close(4000, 'heartbeat timeout');   // its close event is ignored
    }, PONG_WITHIN);
  }

  // stop using the current socket and try again later
  function lost() {
    clearInterval(pingTimer);
    clearTimeout(deadline);
    clearTimeout(connectTimer);
    pingTimer = deadline = connectTimer = null;
    ws = null;
    rttBox.textContent = '';
    // 0.5 s, 1 s, 2 s … up to 8 s, each picked at random in its upper half
    const ceiling = Math.min(8000, 500 * 2 ** attempt++);
    const delay = ceiling / 2 + Math.random() * ceiling / 2;
    setStatus('closed', 'offline, retrying in ' + Math.ceil(delay / 1000) + ' s');
    log('reconnecting in ' + Math.round(delay) + ' ms (attempt ' + attempt + ')');
    retry = setTimeout(connect, delay);
  }

  function post() {
    const text = input.value.trim();
    if (!text || !ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(text);
    input.value = '';
  }
  send.addEventListener('click', post);
  input.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') post(); });
  window.addEventListener('online', () => { if (!ws) connect(); });

  connect();
})();
