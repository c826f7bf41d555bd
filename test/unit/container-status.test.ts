import { describe, expect, it } from 'vitest';
import { collectStatus, formatStatusTable } from '../../src/report/status.js';
import { readContainers, recordContainers } from '../../src/state/containers.js';
import { testConfig } from '../helpers/fakes.js';

describe('containers whose certificate could not be checked', () => {
  it('are recorded with the reason and shown as "could not verify", never as serving', async () => {
    const { config } = testConfig([{ name: 'mail', domains: ['mail.example.test'] }]);
    await recordContainers(
      config.stateDir,
      [
        { container: 'postfix', ok: true, reloaded: true, verified: true },
        {
          container: 'rspamd',
          ok: true,
          reloaded: true,
          verified: false,
          unverified: 'it listens on none of the default ports 25, 465, 587; set mailcerts.verify',
        },
        { container: 'dovecot', ok: false, reloaded: false, error: 'reload failed' },
      ],
      true,
    );
    const saved = await readContainers(config.stateDir);
    expect(saved.rspamd).toMatchObject({
      reloaded: true,
      serves: null,
      unverified: expect.stringContaining('25, 465'),
    });
    expect(saved.postfix?.unverified).toBeUndefined();
    const table = formatStatusTable(await collectStatus(config));
    const line = (name: string) => table.split('\n').find((l) => l.startsWith(name)) ?? '';
    expect(line('rspamd')).toMatch(
      /^rspamd\s+could not verify\s+-\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+could not verify: it listens on none of the default ports 25, 465, 587; set mailcerts.verify$/,
    );
    expect(line('postfix')).toMatch(/^postfix\s+yes\s+/);
    expect(line('dovecot')).toMatch(/^dovecot\s+not reloaded\s+.*reload failed$/);
  });
});
