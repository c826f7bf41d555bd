/**
 * Sending one alert: by e-mail through SMTP submission (STARTTLS required, or SMTPS), with
 * nodemailer's SMTP connection (loaded only to send), or by a webhook POST (JSON, ntfy or
 * Slack-compatible body). Each send takes a signal: when it aborts (the deadline, a shutdown),
 * the connection is torn down at once, whatever the server is doing.
 */
import { TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import type { Config } from '../config/schema.js';
import { spkiOf } from '../pki/identity.js';

export interface AlertMessage {
  kind: 'problem' | 'resolved';
  key: string;
  subject: string;
  text: string;
}

export interface SendOptions {
  signal: AbortSignal;
  /**
   * SPKI SHA-256 (hex) of the certificates mailcerts published for the SMTP server's name (the
   * stack's own Postfix): such a certificate is accepted even when its chain does not verify
   * (expired, say), besides any certificate that does. Empty: the chain must verify.
   */
  pins?: readonly string[];
}

const TIMEOUT_MS = 15_000;

/** Rejects with the signal's reason as soon as it aborts. */
function abortion(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/**
 * Why the TLS session must not carry the alert, or undefined. A verified chain for the name
 * passes; otherwise only a leaf whose key is one of the pins, for that same name.
 */
function tlsProblem(socket: Socket | false | null, servername: string, pins: readonly string[]): string | undefined {
  if (!(socket instanceof TLSSocket) || !socket.encrypted) return 'the connection to the SMTP server is not encrypted';
  if (socket.authorized) return undefined;
  const why = `the SMTP server's certificate cannot be trusted for ${servername} (${String(socket.authorizationError)})`;
  const leaf = socket.getPeerX509Certificate();
  if (!leaf || pins.length === 0) return why;
  if (!pins.includes(spkiOf(leaf)))
    return `${why}, and it is not the certificate mailcerts published for ${servername}`;
  return leaf.checkHost(servername) ? undefined : `the SMTP server's certificate is not for ${servername}`;
}

export async function sendEmail(
  cfg: NonNullable<Config['alerts']['email']>,
  m: AlertMessage,
  o: SendOptions,
): Promise<void> {
  const [{ default: SMTPConnection }, { default: MailComposer }] = await Promise.all([
    import('nodemailer/lib/smtp-connection'),
    import('nodemailer/lib/mail-composer'),
  ]);
  const url = new URL(cfg.smtp);
  const secure = url.protocol === 'smtps:';
  const pins = o.pins ?? [];
  const conn = new SMTPConnection({
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: Number(url.port || (secure ? 465 : 587)),
    secure,
    requireTLS: !secure, // STARTTLS or nothing: an alert may carry host names and errors
    // The name the server's certificate is checked against, when the URL names it by address.
    servername: cfg.servername,
    // With pins, the chain is judged by tlsProblem() once the session is up, before any credential or mail goes out.
    tls: { servername: cfg.servername, rejectUnauthorized: pins.length === 0 },
    connectionTimeout: TIMEOUT_MS,
    greetingTimeout: TIMEOUT_MS,
    socketTimeout: TIMEOUT_MS,
  });
  // A trickling server resets every socket timeout: the signal ends the connection, not the server.
  const teardown = () => {
    const socket = conn._socket;
    conn.close(); // ends the session politely, and would wait 5 s for the server to close its side
    if (socket) socket.destroy();
  };
  o.signal.addEventListener('abort', teardown, { once: true });
  const failed = new Promise<never>((_, reject) => conn.on('error', reject));
  const step = <T>(fn: (done: (err?: Error | null, value?: T) => void) => void) =>
    Promise.race([
      failed,
      abortion(o.signal),
      new Promise<T>((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value as T)))),
    ]);
  try {
    const mail = new MailComposer({ from: cfg.from, to: cfg.to, subject: m.subject, text: m.text }).compile();
    const raw = await mail.build();
    await step<void>((done) => conn.connect(done));
    const problem = tlsProblem(conn._socket, cfg.servername, pins);
    if (problem) throw new Error(`${problem}; nothing was sent`);
    if (url.username && conn.allowsAuth)
      await step<boolean>((done) =>
        conn.login({ user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) }, done),
      );
    await step((done) => conn.send(mail.getEnvelope(), raw, done));
  } finally {
    o.signal.removeEventListener('abort', teardown);
    conn.close();
  }
}

/** Slack's mrkdwn reads &, < and > as markup (<!channel>, <url|text>): escaped as Slack documents. */
export const slackEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export async function sendWebhook(
  cfg: NonNullable<Config['alerts']['webhook']>,
  m: AlertMessage,
  o: SendOptions,
): Promise<void> {
  const init: RequestInit =
    cfg.format === 'ntfy'
      ? {
          body: m.text,
          headers: {
            Title: m.subject,
            Tags: m.kind === 'problem' ? 'warning' : 'white_check_mark',
            Priority: m.kind === 'problem' ? 'high' : 'default',
          },
        }
      : cfg.format === 'slack'
        ? {
            body: JSON.stringify({ text: `*${slackEscape(m.subject)}*\n${slackEscape(m.text)}` }),
            headers: { 'content-type': 'application/json' },
          }
        : {
            body: JSON.stringify({ event: m.kind, problem: m.key, subject: m.subject, text: m.text }),
            headers: { 'content-type': 'application/json' },
          };
  const signal = AbortSignal.any([o.signal, AbortSignal.timeout(TIMEOUT_MS)]);
  const res = await fetch(cfg.url, { method: 'POST', ...init, redirect: 'error', signal });
  await res.body?.cancel();
  if (!res.ok) throw new Error(`the webhook answered HTTP ${res.status}`);
}
