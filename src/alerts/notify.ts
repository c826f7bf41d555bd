/**
 * Alerts, once per problem and once when it is fixed, kept in STATE_DIR/alerts.json so that a
 * restart neither repeats nor forgets one. A channel that cannot be reached is retried with
 * backoff; nothing here ever holds a renewal up (it runs beside the passes, each send with a
 * deadline that tears its connection down).
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
import { publishedPins } from './own-server.js';
import { currentProblems, type Problem } from './problems.js';
import { Cancelled } from '../util/error-codes.js';

const MessageSchema = z.object({
  kind: z.enum(['problem', 'resolved']),
  key: z.string(),
  subject: z.string(),
  text: z.string(),
});
const AlertStateSchema = z.object({
  open: z.record(z.string(), z.object({ since: z.string(), summary: z.string() })),
  outbox: z.array(
    z.object({
      channel: z.enum(['email', 'webhook']),
      message: MessageSchema,
      attempts: z.int().check(z.nonnegative()),
      nextTryAt: z.iso.datetime(),
      lastError: z.optional(z.string()),
    }),
  ),
});
type AlertState = z.infer<typeof AlertStateSchema>;

const MORE = 'See more: docker compose exec mailcerts node /app/mailcerts.mjs status (or mailcerts status)';
const RETRY_MS = 60_000;
const RETRY_CAP_MS = 3_600_000;
/** One send, whatever the server does (a trickle of bytes resets a socket timeout). */
const SEND_DEADLINE_MS = 30_000;
/** Undelivered messages are not kept forever, nor without bound. */
const KEEP_MS = 7 * 86_400_000;
const MAX_OUTBOX = 200;

/**
 * One send with a signal of its own, aborted at the deadline or when mailcerts stops: the send
 * closes its connection then. The race is kept, so that the round goes on whatever the send does.
 */
async function withDeadline<T>(send: (signal: AbortSignal) => Promise<T>, ms: number, stop?: AbortSignal): Promise<T> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`no answer within ${ms / 1000} s`)), ms);
  const onStop = () => ac.abort(new Cancelled('the alert round'));
  stop?.addEventListener('abort', onStop, { once: true });
  const aborted = new Promise<never>((_, reject) =>
    ac.signal.addEventListener('abort', () => reject(ac.signal.reason), { once: true }),
  );
  try {
    return await Promise.race([send(ac.signal), aborted]);
  } finally {
    clearTimeout(timer);
    stop?.removeEventListener('abort', onStop);
  }
}

export interface NotifyOptions {
  /** Aborts the send in progress and ends the round (mailcerts is stopping). */
  signal?: AbortSignal;
  /** How long one send may take (tests shorten it). */
  deadlineMs?: number;
}

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
  return {
    kind: 'resolved',
    key,
    subject: `[mailcerts] resolved: ${open.summary}`,
    text: [`Resolved: ${open.summary} (since ${open.since}; fixed by ${now.toISOString()}).`, MORE, ''].join('\n'),
  };
}

type Channel = AlertState['outbox'][number]['channel'];
type Outgoing = AlertState['outbox'][number];

/** After a pass: new problems and fixed ones become messages; due messages are sent. */
export async function notify(
  config: Config,
  rows: StatusRow[],
  log: Logger,
  now = new Date(),
  opts: NotifyOptions = {},
): Promise<{ undelivered: number; nextTryAt?: Date }> {
  const { email, webhook } = config.alerts;
  if (!email && !webhook) return { undelivered: 0 };
  const path = alertsPath(config.stateDir);
  const state: AlertState = (await readStateFile(path, AlertStateSchema, log)) ?? { open: {}, outbox: [] };
  let saved = JSON.stringify(state);
  const save = async () => {
    const text = JSON.stringify(state);
    if (text === saved) return;
    await writeJson(path, state);
    saved = text;
  };
  const channels: Channel[] = [...(email ? ['email' as const] : []), ...(webhook ? ['webhook' as const] : [])];
  // A channel no longer configured has nobody to deliver to; old or surplus messages go too.
  state.outbox = state.outbox
    .filter((o) => channels.includes(o.channel) && now.getTime() - Date.parse(o.nextTryAt) < KEEP_MS)
    .slice(-MAX_OUTBOX);
  queueChanges(state, channels, currentProblems(rows, config.alerts, now), log, now);
  // Saved before anything is sent, and after each send: a crash never sends one twice, nor forgets one.
  try {
    await save();
  } catch (err) {
    log.warn(
      { step: 'alert', error: errorMessage(err) },
      'cannot write STATE_DIR/alerts.json; no alert is sent until it can be',
    );
    return { undelivered: state.outbox.length };
  }
  await deliver(config, state, { log, now, opts, save });
  return { undelivered: state.outbox.length, nextTryAt: nextTry(state) };
}

/** New problems are queued on every channel; a fixed one is queued as resolved, or its unsent problem dropped. */
function queueChanges(state: AlertState, channels: Channel[], problems: Problem[], log: Logger, now: Date): void {
  const enqueue = (channel: Channel, message: AlertMessage) =>
    state.outbox.push({ channel, message, attempts: 0, nextTryAt: now.toISOString() });
  for (const p of problems) {
    if (state.open[p.key]) continue;
    state.open[p.key] = { since: p.since, summary: p.summary };
    for (const channel of channels) enqueue(channel, problemMessage(p));
    log.warn({ step: 'alert', problem: p.key, since: p.since }, `alert: ${p.summary}`);
  }
  for (const [key, open] of Object.entries(state.open)) {
    if (problems.some((p) => p.key === key)) continue;
    delete state.open[key];
    log.info({ step: 'alert', problem: key }, `alert resolved: ${open.summary}`);
    for (const channel of channels) {
      // Not told of it yet on this channel: it hears of neither the problem nor its end.
      const unsent = state.outbox.findIndex(
        (o) => o.channel === channel && o.message.key === key && o.message.kind === 'problem',
      );
      if (unsent >= 0) state.outbox.splice(unsent, 1);
      else enqueue(channel, resolvedMessage(key, open, now));
    }
  }
}

interface Round {
  log: Logger;
  now: Date;
  opts: NotifyOptions;
  save: () => Promise<void>;
}

/** Sends the due messages in order per channel: once one fails, the rest of that channel waits with it. */
async function deliver(config: Config, state: AlertState, { log, now, opts, save }: Round): Promise<void> {
  const { email, webhook } = config.alerts;
  const down = new Set<string>();
  let pins: Promise<string[]> | undefined;
  for (const item of [...state.outbox]) {
    if (opts.signal?.aborted) break;
    if (down.has(item.channel)) continue;
    if (Date.parse(item.nextTryAt) > now.getTime()) {
      down.add(item.channel);
      continue;
    }
    try {
      if (item.channel === 'email') pins ??= publishedPins(config);
      const send =
        item.channel === 'email'
          ? async (signal: AbortSignal) => sendEmail(email!, item.message, { signal, pins: await pins })
          : (signal: AbortSignal) => sendWebhook(webhook!, item.message, { signal });
      await withDeadline(send, opts.deadlineMs ?? SEND_DEADLINE_MS, opts.signal);
      state.outbox.splice(state.outbox.indexOf(item), 1);
      log.info(
        { step: 'alert', channel: item.channel, problem: item.message.key, kind: item.message.kind },
        'alert sent',
      );
    } catch (err) {
      if (opts.signal?.aborted) break; // not the target's fault: tried again as it stands at the next start
      down.add(item.channel);
      retryLater(item, err, now, log);
    }
    await save().catch((err: unknown) =>
      log.warn({ step: 'alert', error: errorMessage(err) }, 'cannot write STATE_DIR/alerts.json'),
    );
  }
}

/** A failed send: tried again after a backoff that doubles per attempt, up to an hour. */
function retryLater(item: Outgoing, err: unknown, now: Date, log: Logger): void {
  item.attempts++;
  item.lastError = redact(errorMessage(err)).slice(0, 500);
  item.nextTryAt = new Date(now.getTime() + Math.min(RETRY_MS * 2 ** (item.attempts - 1), RETRY_CAP_MS)).toISOString();
  log.warn(
    { step: 'alert', channel: item.channel, problem: item.message.key, error: item.lastError, retryAt: item.nextTryAt },
    'could not send an alert; retrying later',
  );
}

/** When a channel is tried again: at its first message's time (the others wait behind it, whatever their own time says). */
function nextTry(state: AlertState): Date | undefined {
  const heads = new Map<string, number>();
  for (const o of state.outbox) if (!heads.has(o.channel)) heads.set(o.channel, Date.parse(o.nextTryAt));
  return heads.size === 0 ? undefined : new Date(Math.min(...heads.values()));
}

/** For `status`: alerts not delivered yet, per channel, with the last error. */
export async function undeliveredAlerts(stateDir: string): Promise<string | undefined> {
  const state = await readStateFile(alertsPath(stateDir), AlertStateSchema, undefined, { readOnly: true }).catch(
    () => undefined,
  );
  if (!state || state.outbox.length === 0) return undefined;
  const by = new Map<string, typeof state.outbox>();
  for (const o of state.outbox) by.set(o.channel, [...(by.get(o.channel) ?? []), o]);
  return `alerts not delivered yet: ${[...by].map(([channel, items]) => `${items.length} by ${channel} (last error: ${items[0]!.lastError ?? 'not tried yet'}; next try ${items.map((i) => i.nextTryAt).sort()[0]})`).join('; ')}`;
}
