// Reads the checks.json the conformance suite wrote for each scenario and prints one verdict
// per scenario, the messages of failing checks, and a closing "N passed, N failed" line.
// Exit status: 0 when every scenario passed, 1 otherwise.
//
// usage: node summarize.mjs NOT_COUNTED_FILE SCENARIO=RESULTS_DIR...
//
// NOT_COUNTED_FILE holds lines "scenario:check-id reason" (# comments allowed): checks that
// run but cannot judge aside (they need a fixture tool of the suite's reference server, or
// what they test is decided by the HTTP bridge). They are shown, never counted. A failing
// check the suite itself marks untestable (details.untestable) is shown the same way.
// A scenario that left no checks (skipped by the suite, crashed, timed out) fails.

import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const [notCountedFile, ...pairs] = process.argv.slice(2);

const notCounted = new Map();
for (const raw of readFileSync(notCountedFile, 'utf8').split('\n')) {
  const line = raw.replace(/#.*/, '').trim();
  if (!line) continue;
  const [key, ...reason] = line.split(/\s+/);
  notCounted.set(key, reason.join(' '));
}

function checksOf(dir) {
  // The suite writes DIR/server-<scenario>-<timestamp>/checks.json.
  if (!existsSync(dir)) return null;
  for (const sub of readdirSync(dir)) {
    const file = join(dir, sub, 'checks.json');
    if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  }
  return null;
}

const oneLine = (s, max = 600) => {
  const t = String(s ?? '').replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
};

let passed = 0;
let failed = 0;
for (const pair of pairs) {
  const eq = pair.indexOf('=');
  const scenario = pair.slice(0, eq);
  const checks = checksOf(pair.slice(eq + 1));
  if (!checks || checks.length === 0) {
    failed++;
    console.log(`FAIL  ${scenario}`);
    console.log('        no checks recorded (skipped, crashed or timed out: see its log)');
    continue;
  }
  const bad = [];
  const shown = [];
  let counted = 0;
  for (const c of checks) {
    const key = `${scenario}:${c.id}`;
    const msg = oneLine(c.errorMessage ?? c.details?.message);
    if (notCounted.has(key)) {
      shown.push(`n/a   ${c.id} [${c.status}] ${notCounted.get(key)}`);
    } else if (c.status === 'FAILURE' && c.details?.untestable) {
      shown.push(`n/a   ${c.id} [untestable] ${msg}`);
    } else if (c.status === 'FAILURE') {
      counted++;
      bad.push(`fail  ${c.id}: ${msg}`);
    } else if (c.status === 'SUCCESS') {
      counted++;
    } else if (c.status === 'WARNING') {
      counted++;
      shown.push(`warn  ${c.id}: ${msg}`);
    }
    // INFO and SKIPPED checks judge nothing.
  }
  const ok = bad.length === 0 && counted > 0;
  if (ok) passed++;
  else failed++;
  const tally = `${counted - bad.length}/${counted} checks`;
  console.log(`${ok ? 'PASS' : 'FAIL'}  ${scenario} (${tally})`);
  for (const line of [...bad, ...shown]) console.log(`        ${line}`);
  if (counted === 0) console.log('        no check that judges aside ran');
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
