#!/usr/bin/env node
// daemon-probe.mjs — starts the mailcerts daemon (`node dist/cli.js run`) with the caller's
// environment, and measures:
//   - start → status endpoint up (STATUS_ADDRESS accepts a connection),
//   - start → /healthz 200 (valid certificates found),
//   - start → first pass done (the "waiting for the next pass" log line),
//   - ready = the later of /healthz 200 and the first pass done;
// then leaves the daemon idle for --settle-ms and reads VmRSS / VmHWM from /proc/<pid>/status,
// and stops it with SIGTERM (SIGKILL after 10 s). Loopback only.
//
// usage: node daemon-probe.mjs --cli dist/cli.js --status 127.0.0.1:20990 [--node-flags "--a --b"] [--settle-ms 3000]
//                              [--log daemon.log] [--json out.json] [--timeout-ms 60000]
import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const CLI = args.cli ?? die('--cli is required');
const [HOST, PORT] = (args.status ?? die('--status host:port is required')).split(':');
if (!/^127\./.test(HOST)) die('--status must be a 127.0.0.0/8 address');
const SETTLE_MS = Number(args['settle-ms'] ?? 3000);
const TIMEOUT_MS = Number(args['timeout-ms'] ?? 60_000);

function die(msg) {
  console.error(`daemon-probe: ${msg}`);
  process.exit(2);
}
const now = () => performance.now();
const sec = (ms) => (ms === undefined ? null : +(ms / 1000).toFixed(4));

function statusKb(pid) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(text.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN);
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

function connects() {
  return new Promise((resolve) => {
    const sock = net.connect({ host: HOST, port: Number(PORT) }, () => {
      sock.destroy();
      resolve(true);
    });
    sock.on('error', () => resolve(false));
  });
}

function get(path) {
  return new Promise((resolve) => {
    // A long timeout: an aborted request would only make the daemon compute the status again.
    const req = http.get({ host: HOST, port: Number(PORT), path, agent: false, timeout: 60_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

const t0 = now();
const flags = (args['node-flags'] ?? '').split(/\s+/).filter(Boolean); // the image's node flags, from run.sh
const child = spawn(process.execPath, [...flags, CLI, 'run'], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
const log = args.log ? createWriteStream(args.log) : undefined;
const marks = {};
let exited = null;
let partial = '';
const times = {};
child.stdout.on('data', (d) => {
  log?.write(d);
  const lines = (partial + d).split('\n');
  partial = lines.pop() ?? '';
  for (const l of lines) {
    let j;
    try {
      j = JSON.parse(l);
    } catch {
      continue;
    }
    if (j.msg === 'mailcerts started' && !times.started) times.started = j.time;
    if (j.msg === 'waiting for the next pass' && marks.passDone === undefined) {
      marks.passDone = now() - t0;
      times.passDone = j.time;
    }
    if (j.msg === 'pass failed') marks.passFailed = j.error ?? 'pass failed';
  }
});
child.stderr.on('data', (d) => log?.write(d));
const exitP = new Promise((resolve) =>
  child.on('exit', (code, signal) => {
    exited = { code, signal };
    resolve();
  }),
);

let error;
const late = () => {
  if (exited) return `the daemon exited early (${JSON.stringify(exited)})`;
  if (now() - t0 > TIMEOUT_MS) return `not ready within ${TIMEOUT_MS / 1000} s`;
  return undefined;
};
// Up: the status port accepts a connection (polled every 5 ms).
while (!(error = late())) {
  if (await connects()) {
    marks.up = now() - t0;
    break;
  }
  await sleep(5);
}
// Healthy: /healthz answers 200 (one request at a time, 10 ms apart).
while (!error && !(error = late())) {
  const code = await get('/healthz');
  if (code !== undefined && marks.firstAnswer === undefined) marks.firstAnswer = now() - t0;
  if (code === 200) {
    marks.healthy = now() - t0;
    break;
  }
  await sleep(10);
}
// The first pass done (the log line), if it was not already seen.
while (!error && marks.passDone === undefined && !(error = late())) await sleep(5);
const ready = error ? undefined : Math.max(marks.healthy, marks.passDone);
let mem = { rss: NaN, hwm: NaN };
if (!error) {
  await sleep(SETTLE_MS);
  if (exited) error = `the daemon exited while idle (${JSON.stringify(exited)})`;
  else mem = statusKb(child.pid);
}
const tStop = now();
if (!exited) child.kill('SIGTERM');
const killer = setTimeout(() => {
  if (!exited) child.kill('SIGKILL');
}, 10_000);
await exitP;
clearTimeout(killer);
const stopMs = now() - tStop;
log?.end();

const firstPassS =
  times.started && times.passDone ? (Date.parse(times.passDone) - Date.parse(times.started)) / 1000 : null;
const result = {
  ok: !error && !marks.passFailed,
  error: error ?? marks.passFailed ?? null,
  status_up_s: sec(marks.up),
  healthz_first_answer_s: sec(marks.firstAnswer),
  healthz_ok_s: sec(marks.healthy),
  first_pass_done_s: sec(marks.passDone),
  ready_s: sec(ready),
  first_pass_s: firstPassS, // from the daemon's own log times: 'mailcerts started' → 'waiting for the next pass'
  idle_rss_kb: mem.rss,
  idle_hwm_kb: mem.hwm,
  settle_ms: SETTLE_MS,
  stop_s: sec(stopMs),
  exit: exited,
};
if (args.json) writeFileSync(args.json, `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
