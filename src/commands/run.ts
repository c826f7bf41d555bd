import type { KeyType } from '../config/schema.js';
import { defaultComponents } from '../run/components.js';
import { runDaemon } from '../run/daemon.js';
import { Engine } from '../run/engine.js';
import { type CommandContext, EXIT, refuseUnpublishable, summarize, usageError } from './common.js';
import { Cancelled } from '../util/error-codes.js';

/** `mailcerts run [--once]`: the daemon, or one pass. */
export async function commandRun({ config, log, values }: CommandContext): Promise<number> {
  const refused = await refuseUnpublishable(config);
  if (refused !== undefined) return refused;
  const engine = new Engine(config, log, defaultComponents(config, log));
  const stop = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (stop.signal.aborted) return;
    log.info({ step: 'daemon', signal: sig }, 'stopping');
    stop.abort(new Cancelled());
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  if (values.once) return summarize(await engine.pass({ signal: stop.signal }), log);
  await runDaemon(engine, config, log, stop.signal);
  return EXIT.ok;
}

/** `mailcerts renew [--force] [--key-type TYPE] [NAME]`: one pass, forced or for one certificate. */
export async function commandRenew({ config, log, values, positionals }: CommandContext): Promise<number> {
  const refused = await refuseUnpublishable(config);
  if (refused !== undefined) return refused;
  const only = positionals[0];
  const keyType = values['key-type'] as string | undefined;
  const known = config.certificates.filter((c) => !only || c.name === only).flatMap((c) => c.keyTypes);
  if (keyType !== undefined && !known.includes(keyType as KeyType))
    return usageError(
      'renew',
      `--key-type ${keyType} is not a key type of ${only ? `"${only}"` : 'any certificate'}; configured: ${[...new Set(known)].join(', ')}`,
    );
  return await summarize(
    await new Engine(config, log, defaultComponents(config, log)).pass({
      force: (values.force as boolean | undefined) ?? false,
      only,
      forceKeyType: keyType,
    }),
    log,
  );
}
