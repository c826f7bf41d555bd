#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { createLogger, type Logger, stderrDestination } from './log.js';
import { collectStatus, formatStatusTable } from './report/status.js';
import { runDaemon } from './run/daemon.js';
import { Engine, type PassResult } from './run/engine.js';
import { errorMessage, UserError } from './util/errors.js';

const USAGE = `Usage: mailcerts <command> [options]

Commands:
  run [--once]            start the daemon (or make one pass and exit)
  renew [--force] [NAME]  renew certificates that are due (all with --force), or only NAME
  status [--json]         show certificates, expiry, next renewal and last error
  check                   validate the configuration, reach the CA and the Docker API

Configuration comes from environment variables (see the README).
Exit codes: 0 ok, 1 a certificate failed, 2 usage error, 78 configuration error.`;

const EXIT = { ok: 0, failed: 1, usage: 2, config: 78 } as const;

function summarize(result: PassResult, log: Logger): number {
  for (const c of result.certs) {
    log.info({ step: 'report', cert: c.name, ok: c.ok, decision: c.decision, issued: c.issued, published: c.published, error: c.error }, c.ok ? 'certificate ok' : 'certificate failed');
  }
  return result.ok ? EXIT.ok : EXIT.failed;
}

async function commandRun(config: Config, log: Logger, once: boolean): Promise<number> {
  const engine = new Engine(config, log);
  const stop = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (stop.signal.aborted) return;
    log.info({ step: 'daemon', signal: sig }, 'stopping');
    stop.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  if (once) return summarize(await engine.pass({ signal: stop.signal }), log);
  await runDaemon(engine, config, log, stop.signal);
  return EXIT.ok;
}

async function commandCheck(config: Config, log: Logger): Promise<number> {
  let ok = true;
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out('configuration: ok');
  for (const c of config.certificates) out(`  certificate ${c.name}: ${c.domains.join(', ')} (${c.keyType}, ${c.challenge})`);
  out(`  published into ${config.certsDir}, state in ${config.stateDir}`);
  const { configureAcmeHttp, getDirectory } = await import('./obtain/acme-http.js');
  const { connectDocker, describeAction, discoverTargets, pingDocker, RELOAD_LABEL } = await import('./deploy/docker.js');
  configureAcmeHttp({ timeoutMs: config.acme.timeoutMs, retries: 1, retryAfterCapMs: 5_000 });
  try {
    const dir = await getDirectory(config.acme.directoryUrl);
    if (typeof dir.newOrder !== 'string') throw new UserError(`${config.acme.directoryUrl} answered, but it is not an ACME directory; check ACME_DIRECTORY`);
    out(`CA directory: ok (${config.acme.directoryUrl})`);
  } catch (err) {
    ok = false;
    out(`CA directory: FAILED: ${errorMessage(err)}`);
  }
  const engine = new Engine(config, log);
  for (const spec of config.certificates.filter((c) => c.challenge === 'dns-01')) {
    try {
      out(`DNS-01 (${spec.dnsProvider}) for ${spec.name}: ok (${await (await engine.solverFor(spec)).preflight!(spec.domains)})`);
    } catch (err) {
      ok = false;
      out(`DNS-01 (${spec.dnsProvider}) for ${spec.name}: FAILED: ${errorMessage(err)}`);
    }
  }
  if (!config.dockerReload) {
    out('Docker: reloading is off (DOCKER_RELOAD=false)');
  } else {
    try {
      const docker = connectDocker();
      await pingDocker(docker);
      const targets = await discoverTargets(docker);
      out(`Docker API: ok; ${targets.length} running container(s) carry ${RELOAD_LABEL}`);
      for (const t of targets) {
        if ('error' in t.action) {
          ok = false;
          out(`  ${t.name}: INVALID LABEL ${RELOAD_LABEL}=${t.label}: ${t.action.error}`);
        } else {
          out(`  ${t.name}: ${describeAction(t.action)}`);
        }
      }
    } catch (err) {
      ok = false;
      out(`Docker API: FAILED: ${errorMessage(err)}`);
    }
  }
  log.debug({ step: 'check', ok }, 'check done');
  return ok ? EXIT.ok : EXIT.failed;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return command ? EXIT.ok : EXIT.usage;
  }
  const spec = {
    run: { once: { type: 'boolean' } },
    renew: { force: { type: 'boolean' } },
    status: { json: { type: 'boolean' } },
    check: {},
  } as const;
  if (!(command in spec)) {
    process.stderr.write(`mailcerts: unknown command "${command}"\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  let args;
  try {
    args = parseArgs({ args: rest, options: spec[command as keyof typeof spec], allowPositionals: command === 'renew', strict: true });
  } catch (err) {
    process.stderr.write(`mailcerts ${command}: ${errorMessage(err)}\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`mailcerts: ${err.message}\nNothing was changed.\n`);
      return EXIT.config;
    }
    throw err;
  }
  // Human output (status, check) keeps stdout; logs then go to stderr.
  const toStderr = command === 'status' || command === 'check';
  const secrets = [config.dns01.cloudflare?.apiToken, config.acme.eab?.hmacKey].filter((s): s is string => !!s);
  const log = createLogger(config.logLevel, toStderr ? stderrDestination() : undefined, secrets);
  const values = args.values as Record<string, boolean | undefined>;
  try {
    switch (command) {
      case 'run':
        return await commandRun(config, log, values.once ?? false);
      case 'renew': {
        const only = args.positionals[0];
        return summarize(await new Engine(config, log).pass({ force: values.force ?? false, only }), log);
      }
      case 'status': {
        const rows = await collectStatus(config);
        process.stdout.write(values.json ? `${JSON.stringify(rows, null, 2)}\n` : `${formatStatusTable(rows)}\n`);
        return rows.every((r) => !r.lastError && r.daysLeft !== undefined && r.daysLeft >= 0) ? EXIT.ok : EXIT.failed;
      }
      case 'check':
        return await commandCheck(config, log);
    }
  } catch (err) {
    log.error({ step: 'report', error: errorMessage(err) }, 'mailcerts failed');
    return EXIT.failed;
  }
  return EXIT.usage;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Work abandoned on shutdown (an HTTP call to the CA) must not hold the process open.
    setTimeout(() => process.exit(code), 3_000).unref();
  },
  (err: unknown) => {
    process.stderr.write(`mailcerts: ${errorMessage(err)}\n`);
    process.exitCode = EXIT.failed;
  },
);
