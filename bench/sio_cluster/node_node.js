// One Node node of the Socket.IO cluster benchmark (bench/sio_cluster/run):
// socket.io 4.8 with @socket.io/redis-adapter 8.3 on a node-redis 4 client
// pair, so io.emit reaches every node's clients. The event "pub" from a
// client is broadcast to everyone as "b".
//   node bench/sio_cluster/node_node.js --port 0 --redis PORT [--adapter streams]
// With --adapter streams: @socket.io/redis-streams-adapter 0.3 and
// connectionStateRecovery.
// Prints "listening on ws://127.0.0.1:PORT/" once both Redis clients are up.
'use strict';
const http = require('http');
const path = require('path');
const nm = path.join(__dirname, '..', '..', 'node_modules');
const { Server } = require(path.join(nm, 'socket.io'));
const { createAdapter } = require(path.join(nm, '@socket.io', 'redis-adapter'));
const { createClient } = require(path.join(nm, 'redis'));
const streams = require(path.join(nm, '@socket.io', 'redis-streams-adapter'));

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
}
const port = Number(arg('--port', '0'));
const redisPort = Number(arg('--redis'));
if (!redisPort) throw new Error('--redis PORT is required');

async function main() {
  const pub = createClient({ url: `redis://127.0.0.1:${redisPort}` });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on('error', (e) => process.stderr.write(`redis: ${e.message}\n`));
  await Promise.all([pub.connect(), sub.connect()]);
  const server = http.createServer();
  const opts = arg('--adapter', 'classic') === 'streams'
    ? { adapter: streams.createAdapter(pub), connectionStateRecovery: { maxDisconnectionDuration: 120000 } }
    : { adapter: createAdapter(pub, sub, { key: 'socket.io' }) };
  const io = new Server(server, opts);
  io.on('connection', (socket) => {
    socket.on('pub', (payload) => io.emit('b', payload));
  });
  server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`listening on ws://127.0.0.1:${server.address().port}/\n`);
  });
  const stop = () => { io.close(); pub.quit().catch(() => {}); sub.quit().catch(() => {}); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
main().catch((e) => { process.stderr.write(`${e.stack}\n`); process.exit(1); });
