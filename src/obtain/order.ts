import type * as acme from 'acme-client';
import { createCsr } from '../pki/csr.js';
import type { VariantSpec } from '../config/schema.js';
import type { Logger } from '../log.js';
import { type Clock, systemClock } from '../util/clock.js';
import { poll } from '../util/retry.js';
import { AcmeError, type AcmeStep, acmeStep, problemFrom, rawApi, type Where } from './acme-http.js';
import { generatePrivateKey } from '../pki/keys.js';
import type { ChallengeItem, ChallengeSolver } from './solvers/types.js';
import { Cancelled } from '../util/error-codes.js';

export interface Issued {
  privateKey: string;
  fullchain: string;
}

export interface PollOptions {
  /** First wait; each next one doubles, up to maxIntervalMs. */
  minIntervalMs: number;
  maxIntervalMs: number;
  /** A Retry-After above this is clamped (polls are cheap; the CA hint is a guide). */
  retryAfterCapMs: number;
  deadlineMs: number;
}

/**
 * A CA with nothing to wait for validates in a few milliseconds (Pebble in 5, Let's Encrypt in
 * well under a second): poll early, then back off quickly. A Retry-After from the CA wins.
 */
export const DEFAULT_POLL: PollOptions = {
  minIntervalMs: 20,
  maxIntervalMs: 5_000,
  retryAfterCapMs: 30_000,
  deadlineMs: 300_000,
};

interface OrderContext {
  client: acme.Client;
  spec: VariantSpec;
  solver: ChallengeSolver;
  log: Logger;
  signal?: AbortSignal;
  poll?: PollOptions;
  /** ARI certificate id of the certificate this order replaces (RFC 9773). */
  replaces?: string;
  /** ACME profile for newOrder. */
  profile?: string;
  /** Issuer common name of the preferred alternate chain. */
  preferredChain?: string;
  /** A private key to keep (key reuse); a new one is made otherwise. */
  privateKey?: string;
  /** How polls wait (a test's fake clock). */
  clock?: Clock;
}

type Resource = {
  status: string;
  challenges?: { type: string; error?: unknown }[];
  error?: unknown;
  [k: string]: unknown;
};

/** What one look at an order or authorization found: its body, and the wait the CA asks for. */
interface Look {
  body: Resource;
  retryAfterMs?: number;
}

/**
 * Polls an order or authorization until it leaves pending/processing. The first look comes after
 * the first wait: the resource was just asked to change, and an answer of "pending" costs a request.
 * A wait that would end past the deadline is not begun.
 */
async function pollStatus(
  ctx: OrderContext,
  step: AcmeStep,
  url: string,
  done: string[],
  domain?: string,
): Promise<Resource> {
  const opts = ctx.poll ?? DEFAULT_POLL;
  const clock = ctx.clock ?? systemClock;
  const where = { cert: ctx.spec.name, domain, challenge: ctx.spec.challenge };
  const look = async (): Promise<Look> => {
    const resp = await acmeStep(step, where, () => rawApi(ctx.client).apiRequest(url, null, [200]));
    const body = resp.data as Resource;
    if (!done.includes(body.status)) refuseEnd(step, where, body);
    return { body, retryAfterMs: problemFrom(resp.status, {}, resp.headers as Record<string, unknown>).retryAfterMs };
  };
  const r = await poll(look, {
    until: (l) => done.includes(l.body.status),
    waitFirst: true,
    backoff: { initialMs: opts.minIntervalMs, maxMs: opts.maxIntervalMs },
    retryAfter: (l) => l.retryAfterMs,
    maxRetryAfterMs: opts.retryAfterCapMs,
    deadline: clock.now() + opts.deadlineMs,
    atDeadline: 'give-up',
    signal: ctx.signal,
    clock,
  });
  if (r.ok) return r.value.body;
  if (r.stopped === 'aborted') throw new Cancelled(`certificate "${ctx.spec.name}": ${step}`);
  throw new AcmeError(step, where, new Error('timeout'), {
    detail: `not ${done.join(' or ')} after ${Math.round(opts.deadlineMs / 1000)}s`,
  });
}

/** Throws for a resource that will never reach the wanted status: invalid, or a status ACME does not poll. */
function refuseEnd(step: AcmeStep, where: Where, body: Resource): void {
  if (body.status === 'invalid') {
    const failed = body.challenges?.find((c) => c.error)?.error ?? body.error;
    throw new AcmeError(
      step,
      where,
      new Error(`${step} is invalid`),
      problemFrom(undefined, failed ?? { detail: `the ${step} became invalid` }),
    );
  }
  if (body.status !== 'pending' && body.status !== 'processing' && body.status !== 'ready') {
    throw new AcmeError(step, where, new Error(`unexpected status "${body.status}"`), {
      detail: `unexpected status "${body.status}"`,
    });
  }
}

type Challenge = acme.Authorization['challenges'][number];
type Pending = { item: ChallengeItem; challenge: Challenge; url: string };
type NewOrder = Parameters<acme.Client['createOrder']>[0] & { replaces?: string; profile?: string };

/** Orders a certificate with the manual flow: authorizations answered together, own polling, own timeouts. */
export async function orderCertificate(ctx: OrderContext): Promise<Issued> {
  const { client, spec, log } = ctx;
  const cert = spec.name;
  const privateKey = ctx.privateKey ?? (await generatePrivateKey(spec.keyType));
  const order = await createOrder(ctx);
  log.info({ step: 'order', order: order.url, replaces: order.replaces }, 'order created');
  const authorizations = await acmeStep('authorization', { cert }, () => client.getAuthorizations(order));
  await validate(ctx, await pendingChallenges(ctx, authorizations));
  const valid = await finalize(ctx, order, createCsr(spec.domains, privateKey));
  log.info({ step: 'finalize' }, 'order valid');
  const fullchain = await acmeStep('download', { cert }, () =>
    client.getCertificate(valid as unknown as acme.Order, ctx.preferredChain),
  );
  log.info({ step: 'download' }, 'certificate downloaded');
  return { privateKey, fullchain };
}

/** newOrder, with "replaces" (ARI) when asked; without it when the CA objects to it. */
async function createOrder(ctx: OrderContext): Promise<acme.Order & { replaces?: string }> {
  const { client, spec, log } = ctx;
  const cert = spec.name;
  const identifiers = spec.domains.map((value) => ({ type: 'dns', value }));
  const extra = ctx.profile ? { profile: ctx.profile } : {};
  try {
    return await acmeStep('order', { cert }, () =>
      client.createOrder({ identifiers, ...extra, ...(ctx.replaces ? { replaces: ctx.replaces } : {}) } as NewOrder),
    );
  } catch (err) {
    // Whatever the CA objected to with "replaces" (alreadyReplaced, a conflict, even a run of badNonce
    // seen from Pebble 2.6), the order without it is the documented fallback; a rate limit is not.
    if (!ctx.replaces || !(err instanceof AcmeError) || !err.problem.type || /rateLimited/.test(err.problem.type))
      throw err;
    log.warn(
      { step: 'order', replaces: ctx.replaces, error: err.message },
      'the CA refused "replaces"; ordering without it',
    );
    return await acmeStep('order', { cert }, () => client.createOrder({ identifiers, ...extra } as NewOrder));
  }
}

/** The challenges to answer: one of the solver's type per authorization not valid yet. */
async function pendingChallenges(ctx: OrderContext, authorizations: acme.Authorization[]): Promise<Pending[]> {
  const { client, spec, solver, log } = ctx;
  const pending: Pending[] = [];
  for (const authz of authorizations) {
    const domain = authz.identifier.value;
    if (authz.status === 'valid') {
      log.info({ step: 'authorization', domain }, 'authorization already valid');
      continue;
    }
    const challenge = authz.challenges.find((c) => c.type === solver.type);
    if (!challenge) {
      throw new AcmeError('authorization', { cert: spec.name, domain }, new Error(`no ${solver.type}`), {
        detail: `the CA offers no ${solver.type} challenge for this name (offered: ${authz.challenges.map((c) => c.type).join(', ')})`,
      });
    }
    const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
    pending.push({
      item: { domain, wildcard: authz.wildcard === true, token: challenge.token, keyAuthorization },
      challenge,
      url: authz.url,
    });
  }
  return pending;
}

/**
 * Every challenge is made answerable first (apex and wildcard TXT values must coexist), then the
 * CA is asked to validate them all at once. All are waited for, so that every name that failed
 * validation is known (each counts against the CA's per-name limit).
 */
async function validate(ctx: OrderContext, pending: Pending[]): Promise<void> {
  const { client, spec, solver, log } = ctx;
  const cert = spec.name;
  await solver.begin();
  try {
    await solver.prepare(
      pending.map((p) => p.item),
      ctx.signal,
    );
    const validations = await Promise.allSettled(
      pending.map(async ({ item, challenge, url }) => {
        await acmeStep('authorization', { cert, domain: item.domain }, () => client.completeChallenge(challenge));
        await pollStatus(ctx, 'authorization', url, ['valid'], item.domain);
        log.info(
          { step: 'authorization', domain: item.domain, wildcard: item.wildcard || undefined },
          'authorization valid',
        );
      }),
    );
    const failures = validations.flatMap((v) => (v.status === 'rejected' ? [v.reason as unknown] : []));
    if (failures.length > 0) {
      const first = failures[0];
      if (first instanceof AcmeError) {
        first.failedValidations = failures.flatMap((f) =>
          f instanceof AcmeError && f.step === 'authorization' && f.problem.type && f.domain ? [f.domain] : [],
        );
      }
      throw first;
    }
  } finally {
    await solver.cleanup(pending.map((p) => p.item));
    await solver.end();
  }
}

/**
 * The order is ready once its authorizations are valid (RFC 8555 7.1.6): finalize at once, and
 * look at the order first only if the CA says it is not ready yet. Returns the valid order.
 */
async function finalize(ctx: OrderContext, order: acme.Order, csr: string): Promise<Resource> {
  const cert = ctx.spec.name;
  const send = async () =>
    (await acmeStep('finalize', { cert }, () => ctx.client.finalizeOrder(order, csr))) as unknown as Resource;
  let finalized: Resource;
  try {
    finalized = await send();
  } catch (err) {
    if (!(err instanceof AcmeError) || !/orderNotReady/.test(err.problem.type ?? '')) throw err;
    await pollStatus(ctx, 'order', order.url, ['ready', 'valid']);
    finalized = await send();
  }
  return finalized.status === 'valid' ? finalized : await pollStatus(ctx, 'finalize', order.url, ['valid']);
}
