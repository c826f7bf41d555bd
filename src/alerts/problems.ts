/**
 * What is wrong now, for the people who must hear of it: a renewal failing for longer than
 * ALERT_AFTER, a served certificate that expires within ALERT_EXPIRY, a container serving the
 * wrong certificate, DANE records out of step. Pure: computed from the status rows.
 */
import type { StatusRow } from '../report/status.js';
import { formatDuration } from '../util/duration.js';

export interface Problem {
  /** Stable while the problem lasts: one alert per key, one "resolved" when it goes. */
  key: string;
  summary: string;
  detail: string;
  since: string;
  /** What mailcerts does about it next. */
  next: string;
}

export function currentProblems(
  rows: StatusRow[],
  opts: { afterMs: number; expiryMs: number },
  now = new Date(),
): Problem[] {
  const problems: Problem[] = [];
  const several = (r: StatusRow) => rows.filter((o) => o.name === r.name).length > 1;
  for (const r of rows) {
    const what = several(r) ? `${r.name} (${r.keyType})` : r.name;
    const next = r.nextRenewal ? `next attempt at ${r.nextRenewal} (${r.nextReason})` : r.nextReason;
    if (r.failures > 0 && r.failingSince && now.getTime() - Date.parse(r.failingSince) >= opts.afterMs) {
      problems.push({
        key: `renewal:${r.name}:${r.keyType}`,
        summary: `renewal of ${what} failing`,
        detail: `${r.failures} failed attempt(s); last error: ${r.errorCode ? `${r.errorCode} ` : ''}${r.lastError ?? 'unknown'}`,
        since: r.failingSince,
        next,
      });
    }
    if (r.notAfter && Date.parse(r.notAfter) - now.getTime() < opts.expiryMs) {
      const left = Date.parse(r.notAfter) - now.getTime();
      problems.push({
        key: `expiry:${r.name}:${r.keyType}`,
        summary: left <= 0 ? `certificate ${what} expired` : `certificate ${what} expires in ${formatDuration(left)}`,
        detail: `serial ${r.serial ?? '?'} expires at ${r.notAfter}`,
        since: new Date(Date.parse(r.notAfter) - opts.expiryMs).toISOString(),
        next,
      });
    }
    if (r.dane?.inStep === false) {
      problems.push({
        key: `dane:${r.name}:${r.keyType}`,
        summary: `DANE records of ${what} out of step`,
        detail: r.dane.detail ?? 'the served key has no TLSA record',
        since: r.dane.checkedAt ?? now.toISOString(),
        next: 'mailcerts writes the records again at the next pass; see mailcerts dane',
      });
    }
  }
  // Containers are the same in every row: taken once.
  for (const [name, c] of Object.entries(rows[0]?.containers ?? {})) {
    if (c.serves === false) {
      problems.push({
        key: `container:${name}`,
        summary: `container ${name} serves the wrong certificate`,
        detail: c.error ?? 'it does not serve the published certificate',
        since: c.at,
        next: 'mailcerts reloads and verifies it again at the next pass',
      });
    }
  }
  return problems;
}
