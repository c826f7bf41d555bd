/**
 * Sending one alert: by e-mail through SMTP submission (STARTTLS required, or SMTPS), with
 * nodemailer (loaded only to send), or by a webhook POST (JSON, ntfy or Slack-compatible body).
 */
import type { Config } from '../config/schema.js';

export interface AlertMessage {
  kind: 'problem' | 'resolved';
  key: string;
  subject: string;
  text: string;
}

const TIMEOUT_MS = 15_000;

export async function sendEmail(cfg: NonNullable<Config['alerts']['email']>, m: AlertMessage): Promise<void> {
  const { createTransport } = await import('nodemailer');
  const url = new URL(cfg.smtp);
  const secure = url.protocol === 'smtps:';
  const transport = createTransport({
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: Number(url.port || (secure ? 465 : 587)),
    secure,
    requireTLS: !secure, // STARTTLS or nothing: an alert may carry host names and errors
    auth: url.username ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : undefined,
    // The name the server's certificate is checked against, when the URL names it by address.
    tls: { servername: cfg.servername },
    connectionTimeout: TIMEOUT_MS,
    greetingTimeout: TIMEOUT_MS,
    socketTimeout: TIMEOUT_MS,
  });
  try {
    await transport.sendMail({ from: cfg.from, to: cfg.to, subject: m.subject, text: m.text });
  } finally {
    transport.close();
  }
}

/** Slack's mrkdwn reads &, < and > as markup (<!channel>, <url|text>): escaped as Slack documents. */
export const slackEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export async function sendWebhook(cfg: NonNullable<Config['alerts']['webhook']>, m: AlertMessage): Promise<void> {
  const init: RequestInit =
    cfg.format === 'ntfy'
      ? { body: m.text, headers: { Title: m.subject, Tags: m.kind === 'problem' ? 'warning' : 'white_check_mark', Priority: m.kind === 'problem' ? 'high' : 'default' } }
      : cfg.format === 'slack'
        ? { body: JSON.stringify({ text: `*${slackEscape(m.subject)}*\n${slackEscape(m.text)}` }), headers: { 'content-type': 'application/json' } }
        : { body: JSON.stringify({ event: m.kind, problem: m.key, subject: m.subject, text: m.text }), headers: { 'content-type': 'application/json' } };
  const res = await fetch(cfg.url, { method: 'POST', ...init, redirect: 'error', signal: AbortSignal.timeout(TIMEOUT_MS) });
  await res.body?.cancel();
  if (!res.ok) throw new Error(`the webhook answered HTTP ${res.status}`);
}
