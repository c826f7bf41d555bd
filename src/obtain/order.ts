import type * as acme from 'acme-client';
import { createCsr } from '../pki/csr.js';
import type { VariantSpec } from '../config/schema.js';
import type { Logger } from '../log.js';
import { sleep } from '../util/abort.js';
import { AcmeError, type AcmeStep, acmeStep, problemFrom, rawApi } from './acme-http.js';
import { generatePrivateKey } from '../pki/keys.js';
import type { ChallengeItem, ChallengeSolver } from './solvers/types.js';

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
}

type Resource = {
  status: string;
  challenges?: { type: string; error?: unknown }[];
  error?: unknown;
  [k: string]: unknown;
};

/**
 * Polls an order or authorization until it leaves pending/processing. The first look comes after
 * the first wait: the resource was just asked to change, and an answer of "pending" costs a request.
 */
async function pollStatus(
  ctx: OrderContext,
  step: AcmeStep,
  url: string,
  done: string[],
  domain?: string,
): Promise<Resource> {
  const opts = ctx.poll ?? DEFAULT_POLL;
  const where = { cert: ctx.spec.name, domain, challenge: ctx.spec.challenge };
  const deadline = Date.now() + opts.deadlineMs;
  let wait = opts.minIntervalMs;
  let next = wait;
  for (;;) {
    if (Date.now() + next > deadline) {
      throw new AcmeError(step, where, new Error('timeout'), {
        detail: `not ${done.join(' or ')} after ${Math.round(opts.deadlineMs / 1000)}s`,
      });
    }
    if (!(await sleep(next, ctx.signal)))
      throw new Error(`certificate "${ctx.spec.name}": ${step} cancelled: shutting down`);
    const resp = await acmeStep(step, where, () => rawApi(ctx.client).apiRequest(url, null, [200]));
    const body = resp.data as Resource;
    if (done.includes(body.status)) return body;
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
    wait = Math.min(wait * 2, opts.maxIntervalMs);
    const asked = problemFrom(resp.status, {}, resp.headers as Record<string, unknown>).retryAfterMs;
    next = asked !== undefined ? Math.min(asked, opts.retryAfterCapMs) : wait;
  }
}

/** Orders a certificate with the manual flow: authorizations answered together, own polling, own timeouts. */
export async function orderCertificate(ctx: OrderContext): Promise<Issued> {
  const { client, spec, solver, log } = ctx;
  const cert = spec.name;
  const privateKey = ctx.privateKey ?? (await generatePrivateKey(spec.keyType));
  const identifiers = spec.domains.map((value) => ({ type: 'dns', value }));
  type NewOrder = Parameters<acme.Client['createOrder']>[0] & { replaces?: string; profile?: string };
  const extra = ctx.profile ? { profile: ctx.profile } : {};
  let order: acme.Order & { replaces?: string };
  try {
    order = await acmeStep('order', { cert }, () =>
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
    order = await acmeStep('order', { cert }, () => client.createOrder({ identifiers, ...extra } as NewOrder));
  }
  log.info({ step: 'order', order: order.url, replaces: order.replaces }, 'order created');

  const authorizations = await acmeStep('authorization', { cert }, () => client.getAuthorizations(order));
  const pending: { item: ChallengeItem; challenge: acme.Authorization['challenges'][number]; url: string }[] = [];
  for (const authz of authorizations) {
    const domain = authz.identifier.value;
    if (authz.status === 'valid') {
      log.info({ step: 'authorization', domain }, 'authorization already valid');
      continue;
    }
    const challenge = authz.challenges.find((c) => c.type === solver.type);
    if (!challenge) {
      throw new AcmeError('authorization', { cert, domain }, new Error(`no ${solver.type}`), {
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

  // Every challenge is made answerable first (apex and wildcard TXT values must coexist), then the
  // CA is asked to validate them all at once. All are waited for, so that every name that failed
  // validation is known (each counts against the CA's per-name limit).
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

  const csr = createCsr(spec.domains, privateKey);
  // The order is ready once its authorizations are valid (RFC 8555 7.1.6): finalize at once, and
  // look at the order first only if the CA says it is not ready yet.
  let finalized: Resource;
  try {
    finalized = (await acmeStep('finalize', { cert }, () => client.finalizeOrder(order, csr))) as unknown as Resource;
  } catch (err) {
    if (!(err instanceof AcmeError) || !/orderNotReady/.test(err.problem.type ?? '')) throw err;
    await pollStatus(ctx, 'order', order.url, ['ready', 'valid']);
    finalized = (await acmeStep('finalize', { cert }, () => client.finalizeOrder(order, csr))) as unknown as Resource;
  }
  const valid = finalized.status === 'valid' ? finalized : await pollStatus(ctx, 'finalize', order.url, ['valid']);
  log.info({ step: 'finalize' }, 'order valid');
  const fullchain = await acmeStep('download', { cert }, () =>
    client.getCertificate(valid as unknown as acme.Order, ctx.preferredChain),
  );
  log.info({ step: 'download' }, 'certificate downloaded');
  return { privateKey, fullchain };
}
