import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startStatusServer } from '../../src/report/server.js';
import { certStatePath } from '../../src/state/cert-state.js';
import { captureLog, engineWith, FakeDeployer, FakeIssuer, testConfig } from '../helpers/fakes.js';

describe('the status endpoint', () => {
  it('listens on loopback by default, reads the state at most once a second, and closes idle connections with 408', async () => {
    const { config } = testConfig([{ name: 'mail', domains: ['mail.example.test'] }]);
    expect(config.statusAddress).toEqual({ host: '127.0.0.1', port: 9090 });
    await engineWith(config, new FakeIssuer(), new FakeDeployer([]), captureLog().log).pass();
    const server = await startStatusServer(config, { host: '127.0.0.1', port: 0 }, captureLog().log);
    const port = (server.address() as { port: number }).port;
    try {
      const failures = async () => (await (await fetch(`http://127.0.0.1:${port}/status`)).json())[0].failures;
      expect(await failures()).toBe(0);
      writeFileSync(certStatePath(config.stateDir, 'mail'), JSON.stringify({ failures: 3 }));
      expect(await failures()).toBe(0); // the same reading, within the second
      await new Promise((r) => setTimeout(r, 1_100));
      expect(await failures()).toBe(3);

      const idle = connect({ host: '127.0.0.1', port });
      const answer = await new Promise<string>((resolve) => {
        let data = '';
        idle.on('data', (d) => (data += d));
        idle.on('close', () => resolve(data));
      });
      expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout/);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  }, 15_000);
});
