'use strict';
// bench/soak/lib/judge.js: the verdict: the totals, then every check (all
// messages delivered intact and in order, the server's counts agree with the
// clients', the server back to empty, RSS, fds and the Lua heap flat), each
// failure recorded with fail(); and the problems clients saw.

const path = require('path');
const { ROOT, OPTS, WARMUP_S, SERVER_LOG } = require('./options');
const { say, failures, fail } = require('./output');
const srv = require('./server_proc');
const { closesOf, serverErrTail } = srv;
const { T, violations } = require('./client');
const runner = require('./run');
const { samples, fmtMiB } = runner;

function judge(res, interrupted) {
  const { st, final } = res || {};
  say('');
  say('## totals');
  say(`connections opened ${T.opened}, closed ${T.closed}, at most ${T.maxOpen} open at once`);
  say(`healthy clients ${T.healthy} (slow readers among them ${T.slowHealthy}, ${T.pauses} pauses); killed ${T.killed} (${T.killRst} by RST, ${T.killPartialHeader} inside the header); closed by chaos ${T.chaosClosed} of ${T.chaosSent}; other ${T.unexpected}`);
  say(`healthy echoes: sent ${T.echoSent}, delivered intact ${T.echoDelivered} (${(T.bytesSent / 1048576).toFixed(0)} MiB sent by all clients)`);
  say(`healthy ticks:  expected ${T.ticksExpected}, delivered in order ${T.ticksDelivered}`);
  say(`healthy news:   expected ${T.newsExpected}, delivered in order ${T.newsDelivered}`);
  say(`unhealthy clients: sent ${T.unhealthySent}, echoes received before the end ${T.unhealthyDelivered} (not required)`);
  say(`checked on arrival (every client): ${T.echoesChecked} echoes, ${T.ticksChecked} ticks, ${T.newsChecked} news items`);
  if (st) {
    say(`server: handshakes ${st.handshakes}, messages in ${st.messages_in}, out ${st.messages_out}, closes ${st.closes}, callback errors ${st.callback_errors} (unexpected ${st.unexpected_errors}), dropped ${st.dropped}, refused ticks ${st.tick_refused}, news ${st.news_refused}, echoes ${st.echo_refused}; ticks sent ${st.tick}, news ${st.news}`);
  }
  const cpuSamples = samples.filter((s) => s.label !== 'start');
  if (final && runner.baseline) {
    const run = final.cpuTotal - runner.baseline.cpuTotal;
    const secs = final.t - runner.baseline.t;
    say(`server CPU: ${run.toFixed(1)} s over ${secs.toFixed(0)} s = ${(100 * run / secs).toFixed(1)}% of one core on average; peak sample ${Math.max(...cpuSamples.map((s) => s.cpuPct)).toFixed(1)}%`);
  }

  // ---- the checks ----
  if (interrupted || runner.aborted) {
    fail(interrupted ? `interrupted by ${interrupted}: no verdict on a partial run` : `run aborted: ${runner.aborted}`);
    return printProblems();
  }
  const checks = [];
  const check = (ok, what) => { checks.push(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) fail(what); };
  check(T.violationCount === undefined, `no client saw a wrong, missing, duplicated or reordered message or an unexpected close (${T.violationCount || 0})`);
  check(T.echoSent === T.echoDelivered, `healthy echoes: sent ${T.echoSent} = delivered ${T.echoDelivered}`);
  check(T.ticksExpected === T.ticksDelivered, `healthy ticks: expected ${T.ticksExpected} = delivered ${T.ticksDelivered}`);
  check(T.newsExpected === T.newsDelivered, `healthy news: expected ${T.newsExpected} = delivered ${T.newsDelivered}`);
  check(T.healthy > 0 && T.echoSent > 0 && T.ticksExpected > 0, 'the run did some work');
  check(T.chaosClosed === T.chaosSent, `every "!chaos" closed its connection with 1011 (${T.chaosClosed} of ${T.chaosSent})`);
  check(res && res.stillOpen === 0, `every client closed within 75 s of the end (${res ? res.stillOpen : '?'} left)`);
  if (st) {
    check(st.connections === 0 && st.clients === 0 && st.lws_connections === 0 && st.subscribers === 0 && st.queued_bytes === 0,
      `server back to empty: connections ${st.connections}, clients ${st.clients}, lws connections ${st.lws_connections}, news subscribers ${st.subscribers}, queued bytes ${st.queued_bytes}`);
    check(st.handshakes === T.opened, `server handshakes ${st.handshakes} = client opens ${T.opened}`);
    check(closesOf(st, 1000) === T.healthy, `server 1000 closes ${closesOf(st, 1000)} = healthy clients ${T.healthy}`);
    check(closesOf(st, 1011) === T.chaosSent && st.callback_errors === T.chaosSent && st.unexpected_errors === 0,
      `server 1011 closes ${closesOf(st, 1011)} = callback errors ${st.callback_errors} = "!chaos" sent ${T.chaosSent}, none unexpected${st.first_unexpected_error ? ` (${st.first_unexpected_error.slice(0, 300)})` : ''}`);
    check(closesOf(st, 1006) === T.killed, `server 1006 closes ${closesOf(st, 1006)} = killed clients ${T.killed}`);
    check(st.dropped === 0 && st.tick_refused === 0 && st.news_refused === 0 && st.echo_refused === 0,
      `nothing refused or dropped by send queues (dropped ${st.dropped}, ticks ${st.tick_refused}, news ${st.news_refused}, echoes ${st.echo_refused})`);
  } else {
    check(false, 'GET /stats answered at the end');
  }
  check(srv.serverExited === 'code 0', `the server exited with status 0 on SIGTERM (${srv.serverExited || 'still running'})`);

  // flat memory and descriptors
  const warm = samples.filter((s) => s.label !== 'start' && s.label !== 'end' && s.t >= WARMUP_S - 1)[0];
  const mid = samples.filter((s) => s.label !== 'start' && s.label !== 'end');
  const last = mid[mid.length - 1];
  if (warm && last && warm !== last) {
    const limit = warm.rss * (1 + OPTS['rss-tolerance']) + OPTS['rss-slack-mib'] * 1024;
    check(last.rss <= limit, `RSS flat after warm-up: last sample ${fmtMiB(last.rss)} MiB ≤ ${fmtMiB(limit)} MiB (warm-up sample at ${warm.t.toFixed(0)} s: ${fmtMiB(warm.rss)} MiB + ${OPTS['rss-tolerance'] * 100}% + ${OPTS['rss-slack-mib']} MiB)`);
  } else {
    check(false, `enough samples to judge RSS after a ${WARMUP_S} s warm-up (${mid.length} samples)`);
  }
  if (runner.baseline) {
    const worst = mid.reduce((w, s) => Math.max(w, s.fds - runner.baseline.fds - s.open), -Infinity);
    check(mid.length > 0 && worst <= OPTS['fd-slack'], `fds bounded: every sample ≤ ${runner.baseline.fds} (at start) + open clients + ${OPTS['fd-slack']} (worst excess ${worst})`);
    if (final) {
      check(final.fds === runner.baseline.fds, `fds back to the start's count after the run: ${final.fds} = ${runner.baseline.fds}`);
      check(final.luaKib <= runner.baseline.luaKib + OPTS['lua-slack-kib'], `Lua heap after a full GC at the end ${final.luaKib} KiB ≤ ${runner.baseline.luaKib} KiB at the start + ${OPTS['lua-slack-kib']} KiB`);
    } else {
      check(false, 'a final sample of the server');
    }
  }
  say('');
  say('## checks');
  checks.forEach((l) => say(l));
  printProblems();
}

function printProblems() {
  if (violations.length) {
    say('');
    say(`## client problems (first ${violations.length} of ${T.violationCount})`);
    violations.forEach((v) => say(v));
  }
  if (serverErrTail.length && failures.length) {
    say('');
    say(`## last lines of the server's stderr (${path.relative(ROOT, SERVER_LOG)})`);
    serverErrTail.forEach((l) => say(l));
  }
}

module.exports = { judge };
