import * as z from 'zod/mini';
import { csv, duration, stringTo } from '../fields.js';

/** Where plain http cannot be read or changed on the way. */
const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

function webhookProblem(url: URL | undefined): string | undefined {
  if (!url || !['http:', 'https:'].includes(url.protocol))
    return 'use an http(s):// URL, such as https://ntfy.sh/my-topic or a Slack incoming webhook';
  // fetch refuses such a URL, so every alert would fail
  if (url.username || url.password)
    return "a user name or password in the URL (user:pass@) cannot be sent; use the token the service puts in the URL's path or query (a Slack webhook URL, ntfy's ?auth=)";
  // In clear text, the alert and the URL's token could be read and changed on the way
  if (url.protocol === 'http:' && !LOOPBACK_HOST.test(url.hostname))
    return 'use https://; plain http:// only to a loopback address (127.0.0.1, [::1], localhost)';
  return undefined;
}

/**
 * The central variables of the `alerts` group: who is told when something is wrong.
 * Built when the configuration is read (envSchema in ../schema.ts), not kept.
 */
export const alertsEnv = () => ({
  /**
   * Who gets alert mails. Needs `ALERT_SMTP`.
   * @group alerts
   * @default none
   * @values mail addresses, comma separated
   */
  ALERT_EMAIL: z.optional(
    z.pipe(
      csv,
      z.array(z.email({ error: () => 'use mail addresses such as postmaster@example.com, comma separated' })),
    ),
  ),
  /**
   * `smtp://[user:password@]host[:port]` (STARTTLS required, port 587 by default) or `smtps://…:465`;
   * `?servername=NAME` when the URL names the server by address. Better as `ALERT_SMTP_FILE`: it is a secret, never
   * logged.
   * @group alerts
   * @default (required with `ALERT_EMAIL`)
   * @values an `smtp://` or `smtps://` URL
   */
  ALERT_SMTP: z.optional(
    stringTo((s, ctx) => {
      let url: URL | undefined;
      try {
        url = new URL(s);
      } catch {
        /* reported below */
      }
      if (!url || !['smtp:', 'smtps:'].includes(url.protocol) || !url.hostname) {
        ctx.issues.push({
          code: 'custom',
          input: '(url)',
          message:
            'use smtp://[user:password@]host[:port] (STARTTLS, port 587 by default) or smtps://…:465, such as smtp://postfix:587',
        });
        return z.NEVER;
      }
      return url.href;
    }),
  ),
  /**
   * The sender of alert mails.
   * @group alerts
   * @default `mailcerts@<first name>`
   * @values a mail address
   */
  ALERT_FROM: z.optional(z.email({ error: () => 'use a mail address such as mailcerts@example.com' })),
  /**
   * A URL to POST alerts to; a secret, never logged (tokens often live in it). No `user:pass@` in it.
   * @group alerts
   * @default none
   * @values `https://`, or plain `http://` only to a loopback address (`127.0.0.0/8`, `[::1]`, `localhost`)
   */
  ALERT_WEBHOOK: z.optional(
    stringTo((s, ctx) => {
      let url: URL | undefined;
      try {
        url = new URL(s);
      } catch {
        /* reported below */
      }
      const problem = webhookProblem(url);
      if (problem) {
        ctx.issues.push({ code: 'custom', input: '(url)', message: problem });
        return z.NEVER;
      }
      return url!.href;
    }),
  ),
  /**
   * `json` (`{event, problem, subject, text}`), `ntfy` (the text, with `Title`, `Tags`, `Priority` headers),
   * `slack` (`{text}`, for Slack-compatible incoming webhooks).
   * @group alerts
   * @default json
   */
  ALERT_WEBHOOK_FORMAT: z._default(
    z.enum(['json', 'ntfy', 'slack'], { error: () => 'use json, ntfy or slack' }),
    'json',
  ),
  /**
   * A renewal failing for longer than this is alerted.
   * @group alerts
   * @default 24h
   */
  ALERT_AFTER: z._default(duration(1_000, 30 * 86_400_000, '24h'), 86_400_000),
  /**
   * A served certificate expiring sooner than this is alerted.
   * @group alerts
   * @default 14d
   */
  ALERT_EXPIRY: z._default(duration(3_600_000, 90 * 86_400_000, '14d'), 14 * 86_400_000),
});
