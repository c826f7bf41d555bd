import { copyFileSync, appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { logsWith, pebbleEnv, runCli } from '../helpers/cli.js';
import { startRunDockerProxy } from '../helpers/docker-run-proxy.js';
import {
  containerLogs,
  ROOT,
  removeTestContainers,
  seedSelfSigned,
  startContainer,
  waitForLog,
} from '../helpers/mailstack.js';

const dir = join(inject('workDir'), 'reload-targets');
const certs = join(dir, 'certs');
const env = pebbleEnv(dir, { ACME_DOMAINS: 'mx.example.test' });
const reloads = async (name: string) =>
  (await containerLogs(name)).match(/postfix\/master\[\d+\]: reload/g)?.length ?? 0;

let a: string;
let b: string;
let broken: string;
let odd: string;

beforeAll(async () => {
  mkdirSync(certs, { recursive: true });
  await seedSelfSigned(certs);
  // Own network namespaces: three Postfix instances with the same ports do not collide.
  a = await startContainer({ name: 'postfix-a', role: 'postfix', certsDir: certs, network: 'none', reload: 'postfix' });
  b = await startContainer({ name: 'postfix-b', role: 'postfix', certsDir: certs, network: 'none', reload: 'postfix' });
  const mainCf = join(dir, 'broken-main.cf');
  copyFileSync(join(ROOT, 'docker', 'mailstack', 'postfix', 'main.cf'), mainCf);
  broken = await startContainer({
    name: 'postfix-broken',
    role: 'postfix',
    certsDir: certs,
    network: 'none',
    reload: 'postfix',
    mainCf,
  });
  odd = await startContainer({
    name: 'postfix-odd-label',
    role: 'postfix',
    certsDir: certs,
    network: 'none',
    reload: 'reboot-please',
  });
  for (const c of [a, b, broken, odd]) await waitForLog(c, /postfix\/master\[\d+\]: daemon started/);
  appendFileSync(mainCf, 'this line is broken\n'); // broken after start, as by an admin's edit
});
afterAll(removeTestContainers);

describe('reload targets: every labelled container, validation before reload', () => {
  it("reloads both good containers, refuses the broken one with Postfix's own words, and reports it", async () => {
    const before = { a: await reloads(a), b: await reloads(b), broken: await reloads(broken) };
    const r = await runCli(['run', '--once'], env);
    expect(r.code, 'a failed container makes run --once fail').toBe(1);

    expect(await reloads(a)).toBe(before.a + 1);
    expect(await reloads(b)).toBe(before.b + 1);
    expect(await reloads(broken)).toBe(before.broken);

    const refused = logsWith(r, { step: 'reload', container: broken, msg: 'container not deployed' });
    expect(refused).toHaveLength(1);
    expect(refused[0]!.error).toMatch(/validation failed, not reloaded: "postconf -n" exited with 1/);
    expect(refused[0]!.error).toContain(`missing '=' after attribute name: "this line is broken"`);
    expect(logsWith(r, { step: 'reload', container: broken, command: 'postfix reload' })).toHaveLength(0);

    const badLabel = logsWith(r, { step: 'reload', container: odd, msg: 'container not deployed' });
    expect(badLabel[0]!.error).toMatch(
      /unknown reload "reboot-please"; use postfix, dovecot, restart, signal:<NAME> or exec:<command>/,
    );

    const report = logsWith(r, { step: 'report', msg: 'certificate failed' });
    expect(report[0]!.error).toContain(`container ${broken}:`);
    const status = JSON.parse((await runCli(['status', '--json'], env)).stdout)[0];
    expect(status.deployed).toBe(false);
    expect(status.lastError).toContain(broken);
  });

  it('check lists every labelled container and flags the bad label', async () => {
    const r = await runCli(['check'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${a}: postconf -n, postfix check, then postfix reload`);
    expect(r.stdout).toContain(`${b}: postconf -n, postfix check, then postfix reload`);
    expect(r.stdout).toMatch(new RegExp(`${odd}: INVALID LABEL mailcerts.reload=reboot-please`));
  });

  it('a command that outlives its timeout is abandoned, and its request and stream are torn down', async () => {
    const Docker = (await import('dockerode')).default;
    const { execIn } = await import('../../src/deploy/docker.js');
    const client = new Docker();
    const sockets = () =>
      process.getActiveResourcesInfo().filter((r) => r === 'PipeWrap' || r === 'TCPSocketWrap').length;
    await execIn(client, a, ['true']); // a first call opens what stays open (the agent)
    const before = sockets();
    const started = Date.now();
    await expect(execIn(client, a, ['sleep', '30'], { timeoutMs: 700 })).rejects.toThrow(
      /^running "sleep 30" timed out after 1s$/,
    );
    expect(Date.now() - started).toBeLessThan(3_000);
    await new Promise((r) => setTimeout(r, 200));
    expect(sockets()).toBeLessThanOrEqual(before);
  });

  it('a labelled container of another compose project is left alone, unless DOCKER_SCOPE=* says otherwise (with a warning)', async () => {
    const stranger = await startContainer({
      name: 'postfix-stranger',
      role: 'postfix',
      certsDir: certs,
      network: 'none',
      reload: 'postfix',
      project: 'someone-else',
    });
    await waitForLog(stranger, /postfix\/master\[\d+\]: daemon started/);
    const before = await reloads(stranger);
    const scoped = await runCli(['renew', '--force'], env);
    expect(logsWith(scoped, { container: stranger })).toHaveLength(0);
    expect(await reloads(stranger)).toBe(before);
    expect((await runCli(['check'], env)).stdout).not.toContain(stranger);

    // Every labelled container on the host is this run's here: those of a run side by side are not shown to mailcerts.
    const host = await startRunDockerProxy();
    try {
      const wideEnv = { ...env, DOCKER_SCOPE: '*', DOCKER_HOST: host.host };
      const wide = await runCli(['renew', '--force'], wideEnv);
      expect(
        logsWith(wide, {
          msg: 'DOCKER_SCOPE=*: every labelled container on this host is trusted, whatever compose project it belongs to',
        }),
      ).toHaveLength(1);
      expect(await reloads(stranger)).toBe(before + 1);
      expect((await runCli(['check'], wideEnv)).stdout).toMatch(
        /on this host \(DOCKER_SCOPE=\*: every compose project is trusted\)/,
      );
    } finally {
      await host.stop();
    }
  });
});
