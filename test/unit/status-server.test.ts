import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startStatusServer } from '../../src/report/server.js';
import { certStatePath } from '../../src/state/cert-state.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { captureLog, engineWith, FakeDeployer, FakeIssuer, testConfig } from '../helpers/fakes.js';

describe('the status endpoint', () => {
  it('listens on loopback by default, reads the state at most once a second, and closes idle connections with 408', async () => {
    const { config } = testConfig([{ name: 'mail', domains: ['mail.example.test'] }]);
    expect(config.statusAddress).toEqual({ host: '127.0.0.1', port: 9090 });
    await engineWith(config, new FakeIssuer(), new FakeDeployer([]), captureLog().log).pass();
    const clock = new FakeClock();
    const server = await startStatusServer(config, { host: '127.0.0.1', port: 0 }, captureLog().log, clock);
    const port = (server.address() as { port: number }).port;
    try {
      // The idle connection waits out the real request timeout (Node's own timer) while the rest runs.
      const idle = connect({ host: '127.0.0.1', port });
      const answer = new Promise<string>((resolve) => {
        let data = '';
        idle.on('data', (d) => (data += d));
        idle.on('close', () => resolve(data));
      });
      const failures = async () => (await (await fetch(`http://127.0.0.1:${port}/status`)).json())[0].failures;
      expect(await failures()).toBe(0);
      writeFileSync(certStatePath(config.stateDir, 'mail'), JSON.stringify({ failures: 3 }));
      expect(await failures()).toBe(0); // the same reading, within the second
      clock.advance(999);
      expect(await failures()).toBe(0);
      clock.advance(1);
      expect(await failures()).toBe(3);
      expect(await answer).toMatch(/^HTTP\/1\.1 408 Request Timeout/);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  }, 15_000);
});
