import { execFile } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chownSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import { TEST_MARKER } from '../helpers/mailstack.js';
import { makeChain } from '../helpers/pki.js';

const run = promisify(execFile);
const work = join(inject('workDir'), 'shared-state');
const RUNS = 12;
const IMAGE_UID = 10001;

/**
 * Two mailcerts containers sharing one STATE_DIR and CERTS_DIR, as with two replicas by mistake.
 * Each process in either container has the same pids as its twin (both start from 1 in their own
 * pid namespace), and each publishes its own supplied certificate on every run, so that every pass
 * wants to publish. The lock must hold across the two containers: no two passes overlap, and a
 * reader never sees a broken set.
 */
describe('two mailcerts containers on one STATE_DIR', () => {
  it(`never hold the pass lock at once, never publish at once, and leave ..data on a version that exists (${RUNS} runs each)`, {
    timeout: 300_000,
  }, async () => {
    const dirs = {
      state: join(work, 'state'),
      certs: join(work, 'certs'),
      a: join(work, 'custom-a'),
      b: join(work, 'custom-b'),
    };
    for (const d of Object.values(dirs)) {
      mkdirSync(d, { recursive: true });
      chownSync(d, IMAGE_UID, IMAGE_UID);
    }
    for (const side of ['a', 'b'] as const) {
      const chain = makeChain(['shared.example.test'], { days: 30 });
      writeFileSync(join(dirs[side], 'fullchain.pem'), chain.fullchain);
      writeFileSync(join(dirs[side], 'privkey.pem'), chain.key);
    }
    const container = (side: 'a' | 'b') =>
      run(
        'docker',
        [
          'run',
          '--rm',
          '--network',
          'none',
          '--label',
          'mailcerts.test=1',
          '--label',
          TEST_MARKER,
          '-v',
          `${dirs.state}:/state`,
          '-v',
          `${dirs.certs}:/certs`,
          '-v',
          `${dirs[side]}:/custom:ro`,
          '-e',
          'ACME_DOMAINS=shared.example.test',
          '-e',
          'CUSTOM_CERTS_DIR=/custom',
          '-e',
          'CERTS_DIR=/certs',
          '-e',
          'STATE_DIR=/state',
          '-e',
          'DOCKER_RELOAD=false',
          '-e',
          'LOG_LEVEL=debug',
          '-e',
          'STATUS_ADDRESS=off',
          '--entrypoint',
          'sh',
          inject('mailcertsImage'),
          '-c',
          `for i in $(seq ${RUNS}); do node /app/mailcerts.mjs run --once || exit 1; done`,
        ],
        { maxBuffer: 64 * 1024 * 1024 },
      );

    let stop = false;
    const seen = { reads: 0, broken: [] as string[] };
    let published = false; // before the first publish there is no ..data yet
    const reader = (async () => {
      while (!stop) {
        try {
          const version = readlinkSync(join(dirs.certs, '..data'));
          published = true;
          const chain = readFileSync(join(dirs.certs, version, 'fullchain.pem'), 'utf8');
          const key = readFileSync(join(dirs.certs, version, 'privkey.pem'), 'utf8');
          if (!new X509Certificate(chain).checkPrivateKey(createPrivateKey(key)))
            seen.broken.push(`mismatch in ${version}`);
          seen.reads++;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || published) seen.broken.push((err as Error).message);
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    let outputs: Awaited<ReturnType<typeof container>>[];
    try {
      outputs = await Promise.all([container('a'), container('b')]);
    } finally {
      stop = true;
      await reader;
    }
    const logs = outputs.map((o) =>
      o.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    );
    const holds = logs
      .flatMap((lines, side) => {
        const taken = lines.filter((l) => l.msg === 'pass lock taken');
        return taken.map((t) => ({
          side,
          from: t.at as number,
          to: lines.find((l) => l.msg === 'pass lock released' && l.owner === t.owner)?.at as number,
        }));
      })
      .sort((x, y) => x.from - y.from);
    expect(holds).toHaveLength(2 * RUNS);
    expect(holds.every((h) => typeof h.to === 'number')).toBe(true);
    // Sorted by start: a hold overlaps when it starts before any earlier hold has ended.
    let latestEnd = -Infinity;
    const overlaps = holds.filter((h) => {
      const overlapping = h.from < latestEnd;
      latestEnd = Math.max(latestEnd, h.to);
      return overlapping;
    });
    const publishes = logs.flat().filter((l) => l.msg === 'published the supplied certificate').length;
    const alternations = holds.filter((h, i) => i > 0 && h.side !== holds[i - 1]!.side).length;
    console.log(
      `shared STATE_DIR: ${holds.length} passes in 2 containers, ${alternations} hand-overs between them, ${publishes} publishes, ${overlaps.length} overlapping holds; reader: ${seen.reads} reads, ${seen.broken.length} broken`,
    );
    expect(overlaps).toEqual([]);
    expect(alternations).toBeGreaterThan(2); // they did contend
    // A pass publishes when the other side's certificate is in place: after every hand-over, and the first.
    expect(publishes).toBe(alternations + 1);
    expect(seen.broken).toEqual([]);
    const live = readlinkSync(join(dirs.certs, '..data'));
    expect(readdirSync(dirs.certs)).toContain(live);
  });
});
