import { describe, expect, it } from 'vitest';
import { createLogger, textLine } from '../../src/log.js';
import { registerSecrets } from '../../src/util/redact.js';

function capture(format: 'json' | 'text') {
  const lines: string[] = [];
  const log = createLogger('info', { write: (l: string) => lines.push(l) }, format);
  return { log, lines };
}

describe('LOG_FORMAT', () => {
  it('text: one short line per event: time, level, certificate, step, message, then the fields', () => {
    const { log, lines } = capture('text');
    log
      .child({ cert: 'mail' })
      .info({ step: 'validate', serial: 'ABC123', notAfter: '2027-03-01T00:00:00.000Z' }, 'new certificate checked');
    log.child({ cert: 'mail' }).error(
      {
        step: 'deploy',
        container: 'postfix',
        error: 'TLS broken with the published certificate: smtp://:25 (SNI mail.a.test, only RSA offered)',
      },
      'deployment failed',
    );
    log.info('started');
    expect(lines[0]).toMatch(
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ INFO {2}mail validate: new certificate checked {2}serial=ABC123 notAfter=2027-03-01T00:00:00\.000Z\n$/,
    );
    expect(lines[1]).toMatch(
      /^\S+ \S+ ERROR mail deploy: deployment failed {2}container=postfix error="TLS broken with the published certificate: smtp:\/\/:25 \(SNI mail\.a\.test, only RSA offered\)"\n$/,
    );
    expect(lines[2]).toMatch(/^\S+ \S+ INFO {2}started\n$/);
  });

  it('errors read the same in both formats, and secrets are gone from both', () => {
    registerSecrets(['a-registered-secret-value-42']);
    const json = capture('json');
    const text = capture('text');
    for (const { log } of [json, text])
      log.warn(
        { step: 'dns-01', error: 'the server said a-registered-secret-value-42 is wrong', token: 'tok-value' },
        'failed',
      );
    const error = (JSON.parse(json.lines[0]!) as { error: string }).error;
    expect(text.lines[0]).toContain(`error=${JSON.stringify(error)}`);
    for (const line of [json.lines[0]!, text.lines[0]!]) {
      expect(line).not.toContain('a-registered-secret-value-42');
      expect(line).not.toContain('tok-value');
    }
  });

  it('a line that is not JSON passes through unchanged', () => {
    expect(textLine('plain\n')).toBe('plain\n');
  });
});
