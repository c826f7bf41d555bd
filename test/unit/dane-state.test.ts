import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCertState, writeCertState } from '../../src/state/cert-state.js';
import { captureLog } from '../helpers/fakes.js';

const dane = {
  keySince: '2026-11-01T00:00:00.000Z',
  served: 'ab'.repeat(32),
  seenSince: '2026-11-02T00:00:00.000Z',
  seenValues: 'x',
};

describe('the DANE state lives in dane.json, apart from state.json', () => {
  it('is written beside state.json, which no longer holds it; a damaged state.json moved aside leaves it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailcerts-dane-state-'));
    await writeCertState(dir, 'mx', { failures: 0, deployedDigest: 'd1', dane });
    const folder = join(dir, 'certificates', 'mx');
    expect(JSON.parse(readFileSync(join(folder, 'dane.json'), 'utf8'))).toEqual(dane);
    expect(JSON.parse(readFileSync(join(folder, 'state.json'), 'utf8'))).toEqual({ failures: 0, deployedDigest: 'd1' });
    writeFileSync(join(folder, 'state.json'), '{"deployedDigest": "trunc');
    const { log, lines } = captureLog();
    const state = await readCertState(dir, 'mx', log);
    expect(
      lines.some((l) => l.msg === 'a state file was damaged; it was moved aside and mailcerts starts afresh for it'),
    ).toBe(true);
    expect(state).toEqual({ failures: 0, dane });
  });

  it('reads a state written before dane.json (the DANE part in state.json), and moves it out at the next write', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailcerts-dane-state-'));
    const folder = join(dir, 'certificates', 'mx');
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'state.json'), JSON.stringify({ failures: 0, dane }));
    const state = await readCertState(dir, 'mx');
    expect(state.dane).toEqual(dane);
    expect(existsSync(join(folder, 'dane.json'))).toBe(false);
    await writeCertState(dir, 'mx', state);
    expect(JSON.parse(readFileSync(join(folder, 'state.json'), 'utf8')).dane).toBeUndefined();
    expect(JSON.parse(readFileSync(join(folder, 'dane.json'), 'utf8'))).toEqual(dane);
  });
});
