/**
 * Alerts, once per problem and once when it is fixed, kept in STATE_DIR/alerts.json so that a
 * restart neither repeats nor forgets one. A channel that cannot be reached is retried with
 * backoff; nothing here ever holds a renewal up (it runs after the pass, with timeouts).
 */
import { join } from 'node:path';
import * as z from 'zod/mini';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { StatusRow } from '../report/status.js';
import { readStateFile, writeJson } from '../state/files.js';
import { errorMessage } from '../util/errors.js';
import { redact } from '../util/redact.js';
import { type AlertMessage, sendEmail, sendWebhook } from './deliver.js';
import { currentProblems, type Problem } from './problems.js';

const MessageSchema = z.object({ kind: z.enum(['problem', 'resolved']), key: z.string(), subject: z.string(), text: z.string() });
const AlertStateSchema = z.object({
  open: z.record(z.string(), z.object({ since: z.string(), summary: z.string() })),
  outbox: z.array(z.object({
    channel: z.enum(['email', 'webhook']),
    message: MessageSchema,
    attempts: z.int().check(z.nonnegative()),
    nextTryAt: z.iso.datetime(),
    lastError: z.optional(z.string()),
  })),
});
type AlertState = z.infer<typeof AlertStateSchema>;

const MORE = 'See more: docker compose exec mailcerts node /app/mailcerts.mjs status (or mailcerts status)';
const RETRY_MS = 60_000;
const RETRY_CAP_MS = 3_600_000;

const alertsPath = (stateDir: string) => join(stateDir, 'alerts.json');

function problemMessage(p: Problem): AlertMessage {
  return {
    kind: 'problem',
    key: p.key,
    subject: `[mailcerts] ${p.summary}`,
    text: [`What is wrong: ${p.summary}: ${p.detail}`, `Since: ${p.since}`, `Next: ${p.next}`, MORE, ''].join('\n'),
  };
}

function resolvedMessage(key: string, open: { since: string; summary: string }, now: Date): AlertMessage {
  return { kind: 'resolved', key, subject: `[mailcerts] resolved: ${open.summary}`, text: [`Resolved: ${open.summary} (since ${open.since}; fixed by ${now.toISOString()}).`, MORE, ''].join('\n') };
}

/** After a pass: new problems and fixed ones become messages; due messages are sent. */
export async function notify(config: Config, rows: StatusRow[], log: Logger, now = new Date()): Promise<{ undelivered: number; nextTryAt?: Date }> {
  const { email, webhook } = config.alerts;
  if (!email && !webhook) return { undelivered: 0 };
  const path = alertsPath(config.stateDir);
  const state: AlertState = (await readStateFile(path, AlertStateSchema, log)) ?? { open: {}, outbox: [] };
  const before = JSON.stringify(state);
  const channels = [...(email ? ['email' as const] : []), ...(webhook ? ['webhook' as const] : [])];
  const enqueue = (message: AlertMessage) => {
    for (const channel of channels) state.outbox.push({ channel, message, attempts: 0, nextTryAt: now.toISOString() });
  };
  const problems = currentProblems(rows, config.alerts, now);
  for (const p of problems) {
    if (state.open[p.key]) continue;
    state.open[p.key] = { since: p.since, summary: p.summary };
    enqueue(problemMessage(p));
    log.warn({ step: 'alert', problem: p.key, since: p.since }, `alert: ${p.summary}`);
  }
  for (const [key, open] of Object.entries(state.open)) {
    if (problems.some((p) => p.key === key)) continue;
    delete state.open[key];
    enqueue(resolvedMessage(key, open, now));
    log.info({ step: 'alert', problem: key }, `alert resolved: ${open.summary}`);
  }
  for (const item of [...state.outbox]) {
    if (Date.parse(item.nextTryAt) > now.getTime()) continue;
    try {
      if (item.channel === 'email') await sendEmail(email!, item.message);
      else await sendWebhook(webhook!, item.message);
      state.outbox.splice(state.outbox.indexOf(item), 1);
      log.info({ step: 'alert', channel: item.channel, problem: item.message.key, kind: item.message.kind }, 'alert sent');
    } catch (err) {
      item.attempts++;
      item.lastError = redact(errorMessage(err));
      item.nextTryAt = new Date(now.getTime() + Math.min(RETRY_MS * 2 ** (item.attempts - 1), RETRY_CAP_MS)).toISOString();
      log.warn({ step: 'alert', channel: item.channel, problem: item.message.key, error: item.lastError, retryAt: item.nextTryAt }, 'could not send an alert; retrying later');
    }
  }
  if (JSON.stringify(state) !== before) await writeJson(path, state);
  const next = state.outbox.map((o) => Date.parse(o.nextTryAt)).sort((a, b) => a - b)[0];
  return { undelivered: state.outbox.length, nextTryAt: next === undefined ? undefined : new Date(next) };
}

/** For `status`: alerts not delivered yet, per channel, with the last error. */
export async function undeliveredAlerts(stateDir: string): Promise<string | undefined> {
  const state = await readStateFile(alertsPath(stateDir), AlertStateSchema, undefined, { readOnly: true }).catch(() => undefined);
  if (!state || state.outbox.length === 0) return undefined;
  const by = new Map<string, typeof state.outbox>();
  for (const o of state.outbox) by.set(o.channel, [...(by.get(o.channel) ?? []), o]);
  return `alerts not delivered yet: ${[...by].map(([channel, items]) => `${items.length} by ${channel} (last error: ${items[0]!.lastError ?? 'not tried yet'}; next try ${items.map((i) => i.nextTryAt).sort()[0]})`).join('; ')}`;
}
