import { DEPLOY_MODES, deployModeOf } from '../deploy/modes/index.js';
import { collectStatus, formatStatusTable, health } from '../report/status.js';
import { type CommandContext, EXIT, out, usageError } from './common.js';

/** `mailcerts status [--json]`: the certificates' state, and alerts that could not be delivered. */
export async function commandStatus({ config, values }: CommandContext): Promise<number> {
  const rows = await collectStatus(config);
  out(values.json ? JSON.stringify(rows, null, 2) : formatStatusTable(rows));
  if (!values.json && (config.alerts.email || config.alerts.webhook)) {
    const undelivered = await (await import('../alerts/notify.js')).undeliveredAlerts(config.stateDir);
    if (undelivered) out(undelivered);
  }
  return health(rows).ok && rows.every((r) => !r.lastError) ? EXIT.ok : EXIT.failed;
}

/**
 * `mailcerts healthcheck`, the image's HEALTHCHECK: the same verdict as /healthz, read from the
 * files, whatever STATUS_ADDRESS is (off, an address of its own, IPv6).
 */
export async function commandHealthcheck({ config }: CommandContext): Promise<number> {
  const h = health(await collectStatus(config));
  out(h.ok ? 'healthy' : `unhealthy: ${h.problems.join('; ')}`);
  return h.ok ? EXIT.ok : EXIT.failed;
}

/** `mailcerts dane [rollover [NAME]]`: the TLSA records and their rollover, or ask for one. */
export async function commandDane({ config, log, positionals }: CommandContext): Promise<number> {
  const { daneReport, formatDane, requestRollover } = await import('../report/dane.js');
  const [sub, name, ...extra] = positionals;
  if (sub === 'rollover' && extra.length === 0) {
    const asked = await requestRollover(config, log, name);
    out(
      `rollover asked for: ${asked.join(', ')}. It happens at the next pass once each next key's TLSA record has been answered by every authoritative server for twice the TTL; see mailcerts dane.`,
    );
    return EXIT.ok;
  }
  if (sub !== undefined) return usageError('dane', 'use "mailcerts dane" or "mailcerts dane rollover [NAME]"');
  const rows = await daneReport(config, log);
  out(formatDane(rows, config));
  return rows.every((r) => !r.state.startsWith('OUT OF STEP')) ? EXIT.ok : EXIT.failed;
}

/** `mailcerts stack-file [--compose-version V]`: the compose file of the secrets and configs a swarm service mounts. */
export async function commandStackFile({ config, log, values }: CommandContext): Promise<number> {
  const mode = deployModeOf(config);
  if (!mode.stackFile) {
    const withOne = DEPLOY_MODES.filter((m) => m.stackFile).map((m) => `DEPLOY_MODE=${m.name}`);
    return usageError(
      'stack-file',
      `only with ${withOne.join(' or ')}; in ${mode.name} mode the files are in CERTS_DIR`,
    );
  }
  const version = values['compose-version'] as string | undefined;
  if (version !== undefined && !/^3(\.\d{1,2})?$/.test(version))
    return usageError(
      'stack-file',
      `--compose-version ${version}: give the version: line of the stack file, such as 3.8`,
    );
  out((await mode.stackFile(config, log, version)).trimEnd());
  return EXIT.ok;
}
