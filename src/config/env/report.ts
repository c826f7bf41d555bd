import { isIP } from 'node:net';
import * as z from 'zod/mini';
import { splitHostPort } from '../../util/host-port.js';
import { stringTo } from '../fields.js';
import { LOG_LEVELS } from '../types.js';

/** STATUS_ADDRESS: host:port, parsed once here. */
const listenAddress = stringTo((s, ctx) => {
  if (s === 'off') return 'off' as const;
  const hp = splitHostPort(s);
  if (!hp || (isIP(hp.host) === 0 && hp.host !== 'localhost')) {
    ctx.issues.push({
      code: 'custom',
      input: s,
      message: `"${s}" is not host:port with a port from 1 to 65535; use 127.0.0.1:9090, 0.0.0.0:9090 to expose it, or off`,
    });
    return z.NEVER;
  }
  return hp;
});

/**
 * The central variables of the `report` group: what mailcerts says, and where.
 * Built when the configuration is read (envSchema in ../schema.ts), not kept.
 */
export const reportEnv = () => ({
  /**
   * How much mailcerts logs.
   * @group report
   * @default info
   */
  LOG_LEVEL: z._default(z.enum(LOG_LEVELS, { error: () => `use one of ${LOG_LEVELS.join(', ')}` }), 'info'),
  /**
   * `json`: one JSON object per line, for a log collector. `text`: one short line per event for people (`docker
   * compose logs`): time, level, certificate, step, message, then the other fields as `key=value`, e.g. `2026-12-03
   * 10:31:02Z INFO  mail validate: new certificate checked  serial=04AB… notAfter=2027-03-03T09:31:01.000Z`. Errors
   * read the same in both, and secrets are redacted in both.
   * @group report
   * @default `text` on a terminal, else `json`
   */
  LOG_FORMAT: z.optional(
    z.enum(['json', 'text'], {
      error: () => 'use json (for a log collector) or text (one short line per event, for people)',
    }),
  ),
  /**
   * Where the daemon serves `/healthz`, `/status` and `/metrics`, unauthenticated; `0.0.0.0:9090` exposes it (for
   * Prometheus); `off` disables it.
   * @group report
   * @default `127.0.0.1:9090`, in the image too
   * @values `host:port`, or `off`
   */
  STATUS_ADDRESS: z.optional(listenAddress),
});
