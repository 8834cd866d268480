// Stock ticker client: #start opens the WebSocket and subscribes to the
// five symbols, #stop closes it. Prices arrive about once a second; a
// dropped connection comes back by itself (exponential backoff with jitter)
// unless the user pressed Stop.
'use strict';
(function () {
  const SYMBOLS = ['AAPL', 'MSFT', 'AMZN', 'GOOG', 'YHOO'];
  const $ = (id) => document.getElementById(id);
  const status = $('status'), start = $('start'), stop = $('stop');
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
  const last = {};
  let ws = null, wanted = true, attempt = 0, retry = null;

  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
    start.disabled = wanted;
    stop.disabled = !wanted;
  }

  function connect() {
    clearTimeout(retry);
    retry = null;
    setStatus('connecting', 'connecting…');
    const sock = new WebSocket(url);
    ws = sock;
    sock.onopen = () => {
      attempt = 0;
      setStatus('open', 'live');
      sock.send(JSON.stringify({ stocks: SYMBOLS }));
    };
    sock.onmessage = (ev) => { if (sock === ws) receive(ev.data); };
    sock.onclose = () => {
      if (sock !== ws) return;
      ws = null;
      if (wanted) reconnectLater();
    };
  }

  // 0.5 s, 1 s, 2 s … up to 8 s, each picked at random in its upper half
  // so that many pages do not all come back in the same instant.
  function reconnectLater() {
    const ceiling = Math.min(8000, 500 * 2 ** attempt++);
    const delay = ceiling / 2 + Math.random() * ceiling / 2;
    setStatus('closed', 'offline, retrying in ' + Math.ceil(delay / 1000) + ' s');
    retry = setTimeout(connect, delay);
  }
  window.addEventListener('online', () => { if (wanted && !ws) connect(); });

  function receive(data) {
    let prices;
    try { prices = JSON.parse(data); } catch (e) { return; }
    let any = false;
    for (const symbol of SYMBOLS) {
      if (typeof prices[symbol] === 'number') { update(symbol, prices[symbol]); any = true; }
    }
    if (any) $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  }

  function update(symbol, price) {
    const span = document.querySelector('#' + symbol + ' span');
    const change = document.querySelector('#' + symbol + ' .change');
    const before = last[symbol];
    last[symbol] = price;
    span.textContent = price.toFixed(2);
    if (before === undefined || price === before) return;
    const up = price > before;
    span.classList.remove('label-default');
    span.classList.toggle('label-success', up);
    span.classList.toggle('label-danger', !up);
    change.textContent = (up ? '▲ ' : '▼ ') + Math.abs(price - before).toFixed(2);
    change.className = 'num change ' + (up ? 'up' : 'down');
  }

  start.addEventListener('click', () => { wanted = true; if (!ws) connect(); });
  stop.addEventListener('click', () => {
    wanted = false;
    clearTimeout(retry);
    retry = null;
    if (ws) { const sock = ws; ws = null; sock.close(1000, 'stopped'); }
    setStatus('stopped', 'stopped');
  });
  connect();
})();
