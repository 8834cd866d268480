// An independent check of loadgen's sio-broadcast counting: the official
// socket.io-client 4 on each given node counts the "b" broadcasts it gets
// (by the sequence number in front of each payload: duplicates, gaps) and
// prints one VERIFY line per client on SIGTERM/SIGINT.
//   node bench/sio_cluster/count_client.js PORT [PORT…]
'use strict';
const path = require('path');
const { io } = require(path.join(__dirname, '..', '..', 'node_modules', 'socket.io-client'));

const clients = process.argv.slice(2).map((port) => {
  const c = { port, seen: new Set(), dup: 0, max: -1, first: -1, n: 0 };
  const s = io(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false });
  s.on('connect', () => process.stdout.write(`connected ${port}\n`));
  s.on('b', (payload) => {
    const seq = parseInt(String(payload).slice(0, 16), 16);
    c.n++;
    if (c.seen.has(seq)) c.dup++;
    c.seen.add(seq);
    if (c.first < 0) c.first = seq;
    if (seq > c.max) c.max = seq;
  });
  s.on('disconnect', (r) => process.stdout.write(`disconnected ${port}: ${r}\n`));
  c.socket = s;
  return c;
});

function done() {
  for (const c of clients) {
    // every seq from the first one seen to the highest should be here
    const missing = c.max < 0 ? 0 : c.max - c.first + 1 - c.seen.size;
    process.stdout.write(`VERIFY port=${c.port} received=${c.n} distinct=${c.seen.size} ` +
      `first=${c.first} last=${c.max} dup=${c.dup} missing=${missing}\n`);
    c.socket.close();
  }
  process.exit(0);
}
process.on('SIGTERM', done);
process.on('SIGINT', done);
