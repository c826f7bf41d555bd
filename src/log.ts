import { pino, type Logger, type DestinationStream } from 'pino';
import { redact } from './util/redact.js';

export type { Logger };

/**
 * Fields that may carry secrets, at the top of a log record or one level down (`{ headers: {
 * authorization } }`), child bindings included: their values are replaced. Found in the written
 * line by one pattern test (the usual line has none), not with pino's `redact` paths, which parse
 * every path again for every line: a tenth of a pass over 500 certificates.
 */
const SECRET_KEYS = [
  'token',
  'apiToken',
  'authorization',
  'accountKey',
  'privateKey',
  'key',
  'hmacKey',
  'keyAuthorization',
  'password',
];
const SECRET_KEY = new Set(SECRET_KEYS);
const HAS_SECRET_KEY = new RegExp(`"(?:${SECRET_KEYS.join('|')})":`);
const CENSOR = '[redacted]';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const censor = (o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, SECRET_KEY.has(k) ? CENSOR : v]));

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

export type LogFormat = 'json' | 'text';

const HIDDEN = new Set(['time', 'level', 'app', 'msg', 'cert', 'step', 'pid', 'hostname']);

const fieldValue = (v: unknown): string => {
  if (typeof v === 'string') return v === '' || /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
};

/**
 * One JSON log line as a person reads it in `docker compose logs`: time, level, certificate,
 * step, message, then the other fields as key=value. The error text is the JSON one, unchanged.
 */
export function textLine(json: string): string {
  let r: unknown;
  try {
    r = JSON.parse(json);
  } catch {
    return json;
  }
  if (!isRecord(r)) return json;
  const time = typeof r.time === 'string' ? r.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '';
  const where = [r.cert, r.step].filter((x) => x !== undefined && x !== '').join(' ');
  const fields = Object.entries(r)
    .filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => `${k}=${fieldValue(v)}`);
  return `${time} ${String(r.level ?? '')
    .toUpperCase()
    .padEnd(
      5,
    )} ${where ? `${where}: ` : ''}${String(r.msg ?? '').replace(/\r?\n/g, '\\n')}${fields.length > 0 ? `  ${fields.join(' ')}` : ''}\n`;
}

/**
 * JSON lines, one per step (or, with format text, one short line each for people). Call sites
 * bind `cert`, `domain` and `container` where they apply.
 */
export function createLogger(level: string, destination?: DestinationStream, format: LogFormat = 'json'): Logger {
  const render = format === 'text' ? textLine : (line: string) => line;
  return pino(
    {
      level,
      // Last line of defence: a registered secret never leaves the process, whatever field or
      // message carries it; and fields named like secrets are censored (in either format).
      hooks: { streamWrite: (line) => redact(render(censorSecretFields(line))) },
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
