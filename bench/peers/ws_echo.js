// ws_echo: the Node `ws` echo server the benchmarks compare against.
// Written the plain way its README shows; bufferutil is picked up by ws
// itself when installed. Usage: node ws_echo.js --port N (0 = any free port)
'use strict';
const path = require('path');
const { WebSocketServer } = require(path.join(__dirname, '../../node_modules/ws'));

const i = process.argv.indexOf('--port');
const port = i > 0 ? Number(process.argv[i + 1]) : 0;
let echoed = 0; // whole messages, reported at exit for cross-checks

const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    echoed++;
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', () => {}); // a peer vanishing is not the server's problem
});

wss.on('listening', () => {
  process.stdout.write(`listening on ws://127.0.0.1:${wss.address().port}/\n`);
});

function stop() {
  process.stderr.write(`ws_echo: ${echoed} messages echoed\n`);
  for (const ws of wss.clients) ws.close(1001);
  wss.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
