'use strict';
// bench/soak/lib/output.js: the report's lines (echoed to stdout as they
// come) and the list of failed checks that decides the verdict.

const report = [];
function say(line = '') {
  report.push(line);
  process.stdout.write(line + '\n');
}
const failures = [];
function fail(reason) {
  failures.push(reason);
}

module.exports = { report, say, failures, fail };
