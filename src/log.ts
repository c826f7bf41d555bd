import { pino, type Logger, type DestinationStream } from 'pino';
import { redact } from './util/redact.js';

export type { Logger };

/**
 * Fields that may carry secrets, at the top of a log record or one level down (`{ headers: {
 * authorization } }`), child bindings included: their values are replaced. Found in the written
 * line by one pattern test (the usual line has none), not with pino's `redact` paths, which parse
 * every path again for every line: a tenth of a pass over 500 certificates.
 */
const SECRET_KEYS = ['token', 'apiToken', 'authorization', 'accountKey', 'privateKey', 'key', 'hmacKey', 'keyAuthorization', 'password'];
const SECRET_KEY = new Set(SECRET_KEYS);
const HAS_SECRET_KEY = new RegExp(`"(?:${SECRET_KEYS.join('|')})":`);
const CENSOR = '[redacted]';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const censor = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, SECRET_KEY.has(k) ? CENSOR : v]));

/** One JSON log line with its secret fields censored; the same line when it has none. */
export function censorSecretFields(line: string): string {
  if (!HAS_SECRET_KEY.test(line)) return line;
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return line;
  }
  if (!isRecord(record)) return line;
  const out = Object.fromEntries(Object.entries(censor(record)).map(([k, v]) => [k, isRecord(v) ? censor(v) : v]));
  return `${JSON.stringify(out)}\n`;
}

/** JSON lines, one per step. Call sites bind `cert`, `domain` and `container` where they apply. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      // Last line of defence: a registered secret never leaves the process, whatever field or
      // message carries it; and fields named like secrets are censored.
      hooks: { streamWrite: (line) => redact(censorSecretFields(line)) },
      base: { app: 'mailcerts' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** Synchronous stderr, for commands whose stdout is for people (status, check). */
export function stderrDestination(): DestinationStream {
  return pino.destination({ dest: 2, sync: true });
}
