import { createSocket } from 'node:dgram';
import { mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive as alive } from '../../src/util/process.js';

/**
 * Free ports for the test servers (Pebble, the challenge listener, the mail containers on host
 * networking, status endpoints), so that suites, and clones of the repo, run side by side.
 *
 * A port is free when nothing holds it, TCP on every address and UDP (the DNS server uses both).
 * It is picked at random below the kernel's ephemeral range, where no outgoing connection takes
 * it before the server that was handed it listens, and reserved: a file TMPDIR/mailcerts-test-ports/PORT
 * names the process holding it, so no other call, in this process or another test run's, hands it
 * out again while that process lives (the file goes when the process exits; a dead holder's is taken over or swept).
 */
const RESERVED = join(tmpdir(), 'mailcerts-test-ports');
const STALE_MS = 24 * 3600_000;
const mine = new Set<number>();

function ephemeralLow(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
}
const LOW = 20_000;
const HIGH = Math.min(ephemeralLow(), 65_536) - 1;

/** Whether a reservation file still holds its port: its process lives (a file just being written counts too). */
function held(file: string): boolean {
  try {
    const holder = Number(readFileSync(file, 'utf8'));
    const age = Date.now() - statSync(file).mtimeMs;
    return holder > 0 ? alive(holder) && age < STALE_MS : age < 10_000;
  } catch {
    return false; // released meanwhile
  }
}

/** Takes the reservation of a port, unless a live process (this one included) holds it. */
function reserve(port: number): boolean {
  if (mine.has(port)) return false;
  const file = join(RESERVED, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      mine.add(port);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (held(file)) return false;
      try {
        unlinkSync(file);
      } catch {
        /* another process took it over first */
      }
    }
  }
  return false;
}

/** Removes the reservations of processes that are gone (vitest ends its workers without an exit event). */
function sweep(): void {
  for (const entry of readdirSync(RESERVED)) {
    const file = join(RESERVED, entry);
    if (/^\d+$/.test(entry) && !mine.has(Number(entry)) && !held(file)) {
      try {
        unlinkSync(file);
      } catch {
        /* gone already */
      }
    }
  }
}
let swept = false;

function release(port: number): void {
  mine.delete(port);
  try {
    unlinkSync(join(RESERVED, String(port)));
  } catch {
    /* already gone */
  }
}

process.once('exit', () => {
  for (const port of [...mine]) release(port);
});

function canListen(port: number, host: string): Promise<boolean | 'no-family'> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      resolve(err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL' ? 'no-family' : false),
    );
    server.listen({ port, host, ipv6Only: false }, () => server.close(() => resolve(true)));
  });
}

function canBindUdp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind({ port, address: '0.0.0.0' }, () => socket.close(() => resolve(true)));
  });
}

async function isFree(port: number): Promise<boolean> {
  let tcp = await canListen(port, '::'); // dual-stack: every IPv4 and IPv6 address
  if (tcp === 'no-family') tcp = await canListen(port, '0.0.0.0');
  return tcp === true && (await canBindUdp(port));
}

/** A port the kernel picks (bind to port 0), for machines whose ephemeral range leaves no room below it. */
function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** n distinct free ports, reserved for this process. */
export async function freePorts(n: number): Promise<number[]> {
  mkdirSync(RESERVED, { recursive: true, mode: 0o1777 });
  if (!swept) {
    swept = true;
    sweep();
  }
  const out: number[] = [];
  for (let tries = 0; out.length < n; tries++) {
    if (tries > 5_000) throw new Error(`found only ${out.length} of ${n} free ports between ${LOW} and ${HIGH}`);
    // Round ports (24000, 25002, 28053, 19090) are what fixed-port setups pick: stay off them.
    const port = HIGH - LOW >= 1_000 ? LOW + Math.floor(Math.random() * (HIGH - LOW + 1)) : await kernelPort();
    if (port % 1000 < 100 || !reserve(port)) continue;
    if (await isFree(port)) out.push(port);
    else release(port);
  }
  return out;
}

export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}
