import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Keys that may carry secrets anywhere in a log record; their values are replaced. */
const REDACT = [
  'token', '*.token', 'apiToken', '*.apiToken', 'authorization', '*.authorization', 'headers.authorization',
  'accountKey', '*.accountKey', 'privateKey', '*.privateKey', 'key', '*.key', 'hmacKey', '*.hmacKey',
  'keyAuthorization', '*.keyAuthorization', 'password', '*.password',
];

/** JSON lines, one per step. Call sites bind `cert`, `domain` and `container` where they apply. */
export function createLogger(level: string, destination?: DestinationStream, secrets: string[] = []): Logger {
  const known = secrets.filter((s) => s.length >= 8);
  return pino(
    {
      level,
      // Last line of defence: a secret value never leaves the process, whatever field or message carries it.
      ...(known.length ? { hooks: { streamWrite: (line: string) => known.reduce((text, s) => text.split(s).join('[redacted]'), line) } } : {}),
      base: { app: 'mailcerts' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT, censor: '[redacted]' },
    },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** Synchronous stderr, for commands whose stdout is for people (status, check). */
export function stderrDestination(): DestinationStream {
  return pino.destination({ dest: 2, sync: true });
}
