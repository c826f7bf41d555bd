import { pino, type Logger, type DestinationStream } from 'pino';
import { redact } from './util/redact.js';

export type { Logger };

/** Keys that may carry secrets anywhere in a log record; their values are replaced. */
const REDACT = [
  'token', '*.token', 'apiToken', '*.apiToken', 'authorization', '*.authorization', 'headers.authorization',
  'accountKey', '*.accountKey', 'privateKey', '*.privateKey', 'key', '*.key', 'hmacKey', '*.hmacKey',
  'keyAuthorization', '*.keyAuthorization', 'password', '*.password',
];

/** JSON lines, one per step. Call sites bind `cert`, `domain` and `container` where they apply. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      // Last line of defence: a registered secret never leaves the process, whatever field or message carries it.
      hooks: { streamWrite: redact },
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
