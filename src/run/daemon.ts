import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { sleep } from '../util/abort.js';
import { errorMessage } from '../util/errors.js';
import { backoffDelay } from '../util/retry.js';
import type { Engine } from './engine.js';
import { watchSupplied } from './watch-supplied.js';
import { startStatusServer } from '../report/server.js';

/** The check interval with ±5% random jitter, so that many hosts do not hit the CA together. */
export function nextCheckDelay(intervalMs: number, random = Math.random): number {
  return backoffDelay({ initialMs: intervalMs, factor: 1, jitter: 0.05 }, 0, random);
}

/** After a pass that failed as a whole: 1 min, doubling up to an hour (never beyond the check interval). */
export function failedPassDelay(consecutive: number, intervalMs: number): number {
  return backoffDelay({ initialMs: 60_000, maxMs: Math.min(3_600_000, intervalMs) }, Math.max(0, consecutive - 1));
}

/**
 * Sleeps until wakeAt, or less: the alert round runs beside the pass and may end during the sleep
 * with an alert to try again earlier (a channel that could not be reached). Resolves false when
 * the signal aborts.
 */
export async function sleepUntil(
  wakeAt: number,
  signal: AbortSignal,
  alertRetry?: Promise<Date | undefined>,
  log?: Logger,
): Promise<boolean> {
  const sooner = new AbortController();
  let until = wakeAt;
  void alertRetry?.then((at) => {
    if (sooner.signal.aborted || !at || at.getTime() >= until) return;
    until = at.getTime();
    sooner.abort();
    log?.info(
      { step: 'daemon', nextPassAt: new Date(Math.max(Date.now() + 1_000, until)).toISOString() },
      'an alert is to be tried again: the next pass comes sooner',
    );
  });
  const slept = await sleep(Math.max(1_000, until - Date.now()), AbortSignal.any([signal, sooner.signal]));
  if (slept || signal.aborted || !sooner.signal.aborted) {
    sooner.abort(); // a round that ends after the wake-up changes nothing
    return slept;
  }
  return sleep(Math.max(1_000, until - Date.now()), signal);
}

/** How long a daemon pass waits for another mailcerts' pass (a manual renew, a second container). */
const LOCK_WAIT_MS = 10 * 60_000;

/**
 * A pass at start, then one per check interval, or earlier when a certificate's renewal time or
 * backoff ends. Returns when the signal aborts; a pass in progress finishes its publish first.
 */
export async function runDaemon(engine: Engine, config: Config, log: Logger, signal: AbortSignal): Promise<void> {
  log.info({ step: 'daemon', certificates: config.certificates.map((c) => c.name) }, 'mailcerts started');
  // A busy status port must not stop renewals: report it and carry on without the endpoint.
  const status = config.statusAddress
    ? await startStatusServer(config, config.statusAddress, log).catch((err: unknown) => {
        log.error({ step: 'status', error: errorMessage(err) }, 'status endpoint not started');
        return undefined;
      })
    : undefined;
  const watcher = await watchSupplied(
    config,
    (name) => {
      if (signal.aborted) return;
      engine
        .pass({ only: name, signal, lockWaitMs: LOCK_WAIT_MS })
        .catch((err: unknown) => log.error({ step: 'daemon', cert: name, error: errorMessage(err) }, 'pass failed'));
    },
    log,
  );
  let failedPasses = 0;
  while (!signal.aborted) {
    let wakeAt = Date.now() + nextCheckDelay(config.renewCheckIntervalMs);
    let alertRetry: Promise<Date | undefined> | undefined;
    try {
      const result = await engine.pass({ signal, lockWaitMs: LOCK_WAIT_MS });
      failedPasses = 0;
      for (const c of result.certs) if (c.nextAt && c.nextAt.getTime() < wakeAt) wakeAt = c.nextAt.getTime();
      alertRetry = result.alerted;
      // Passive (another mailcerts holds the lease): look again within half a lease, to take over in time.
      if (result.passive !== undefined)
        wakeAt = Math.min(wakeAt, Date.now() + Math.max(5_000, config.docker.leaseMs / 2));
    } catch (err) {
      failedPasses++;
      const delay = failedPassDelay(failedPasses, config.renewCheckIntervalMs);
      log.error({ step: 'daemon', error: errorMessage(err), failedPasses, retryIn: delay }, 'pass failed');
      wakeAt = Math.min(wakeAt, Date.now() + delay);
    }
    if (signal.aborted) break;
    const delay = Math.max(1_000, wakeAt - Date.now());
    log.info({ step: 'daemon', nextPassAt: new Date(Date.now() + delay).toISOString() }, 'waiting for the next pass');
    await sleepUntil(Date.now() + delay, signal, alertRetry, log);
  }
  await watcher?.close();
  status?.closeAllConnections();
  status?.close();
  await engine.idle(); // a watcher-triggered pass finishes its publish first
  log.info({ step: 'daemon' }, 'mailcerts stopped');
}
