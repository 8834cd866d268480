// ws_broadcast: the Node `ws` broadcast server the benchmarks compare
// against: every message received goes to every connected client, the
// sender included. Usage: node ws_broadcast.js --port N (0 = any free port)
'use strict';
const path = require('path');
const { WebSocketServer, WebSocket } = require(path.join(__dirname, '../../node_modules/ws'));

const i = process.argv.indexOf('--port');
const port = i > 0 ? Number(process.argv[i + 1]) : 0;
let received = 0;
let written = 0; // reported at exit for cross-checks

const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    received++;
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) {
        client.send(data, { binary: isBinary });
        written++;
      }
    }
  });
  ws.on('error', () => {});
});

wss.on('listening', () => {
  process.stdout.write(`listening on ws://127.0.0.1:${wss.address().port}/\n`);
});

function stop() {
  process.stderr.write(`ws_broadcast: ${received} messages received, ${written} frames written\n`);
  for (const ws of wss.clients) ws.close(1001);
  wss.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
