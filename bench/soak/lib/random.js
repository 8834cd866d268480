'use strict';
// bench/soak/lib/random.js: the run's randomness, seeded (--seed): the
// generator and its distributions, message sizes, and the payload pools
// messages are cut from; tickPadLen mirrors server.lua's tick padding.

const { OPTS, SEED } = require('./options');

// ---- deterministic randomness (mulberry32) ---------------------------------

let rngState = SEED;
function rng() {
  rngState = (rngState + 0x6d2b79f5) >>> 0;
  let t = rngState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const uniform = (a, b) => a + (b - a) * rng();
const expo = (mean) => -Math.log(1 - rng()) * mean;
const logUniform = (a, b) => Math.floor(Math.exp(uniform(Math.log(a), Math.log(b))));

// Message sizes: mostly small so that 1,000 clients stay within two cores,
// with the frame-length boundaries and the maximum hit now and then.
const EDGES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 262143, 262144];
function pickSize() {
  const u = rng();
  let n;
  if (u < 0.01) n = EDGES[Math.floor(rng() * EDGES.length)];
  else if (u < 0.70) n = Math.floor(rng() * 513);
  else if (u < 0.90) n = logUniform(512, 8192);
  else if (u < 0.98) n = logUniform(8192, 65536);
  else n = logUniform(65536, 262145);
  return Math.min(n, OPTS['max-size']);
}

// Payloads are slices of two pools with "m<client>.<seq>:" written over the
// start. Text is ASCII without '#' or '!' (the server's control prefixes).
const POOL = 1 << 20;
const binPool = Buffer.alloc(POOL + 262144);
const txtPool = Buffer.alloc(POOL + 262144);
{
  const alphabet = Buffer.from('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-_+=/()[]{}<>?');
  for (let i = 0; i < binPool.length; i++) {
    binPool[i] = Math.floor(rng() * 256);
    txtPool[i] = alphabet[Math.floor(rng() * alphabet.length)];
  }
}
function makePayload(size, binary, id, seq) {
  const buf = Buffer.allocUnsafe(size);
  const off = Math.floor(rng() * POOL);
  (binary ? binPool : txtPool).copy(buf, 0, off, off + size);
  const tag = `m${id}.${seq}:`;
  if (size >= tag.length) buf.write(tag, 0, 'latin1');
  return buf;
}
const tickPadLen = (seq) => (seq * 37) % 1021;   // as in server.lua

module.exports = { rng, uniform, expo, pickSize, binPool, makePayload, tickPadLen };
