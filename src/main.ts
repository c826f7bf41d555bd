import { parseArgs } from 'node:util';
import { ConfigError, configParsers, loadConfig } from './config/load.js';
import type { Config, KeyType } from './config/schema.js';
import { createLogger, type Logger, stderrDestination } from './log.js';
import { AcmeIssuer } from './obtain/issuer.js';
import { ordersByDns01 } from './obtain/sources/index.js';
import { collectStatus, formatStatusTable, health } from './report/status.js';
import { deployModeOf, DEPLOY_MODES } from './deploy/modes/index.js';
import { defaultComponents } from './run/components.js';
import { runDaemon } from './run/daemon.js';
import { Engine, type PassResult } from './run/engine.js';
import { certsDirProblem } from './run/preflight.js';
import { runsInContainer } from './util/container.js';
import { errorMessage, UserError } from './util/errors.js';
import { redact, registerSecrets } from './util/redact.js';
import { CONFIG_PARTS } from './parts.js';

const USAGE = `Usage: mailcerts <command> [options]

Commands:
  run [--once]            start the daemon (or make one pass and exit)
  renew [--force] [--key-type TYPE] [NAME]
                          renew certificates that are due (all with --force), or only NAME;
                          --key-type: only that variant of a dual certificate is forced
  status [--json]         show certificates, expiry, next renewal and last error
  check                   validate the configuration, reach the CA and the Docker API; DNSSEC of DANE zones
  healthcheck             exit 0 when every certificate is valid and will be retried in time (as /healthz)
  dane                    the TLSA records of DANE certificates, whether every name server answers them, the rollover
  dane rollover [NAME]    ask for a key rollover (it still waits until the next key's record has been seen 2 x TTL)
  proxy                   the Docker socket proxy, as a service of its own beside mailcerts
                          (PROXY_BIND, PROXY_SOCKET, PROXY_SWARM, PROXY_SCOPE; see the README)
  stack-file [--compose-version V]
                          DEPLOY_MODE=swarm: a compose file naming the certificate secrets and configs each
                          service mounts now, for docker stack deploy -c stack.yml -c it; V: the stack
                          file's version: line, if it has one

Configuration comes from environment variables (see the README).
Exit codes: 0 ok, 1 a certificate failed, 2 usage error, 78 configuration error.`;

const EXIT = { ok: 0, failed: 1, usage: 2, config: 78 } as const;

/** What people read on stdout: secrets never reach it either. */
const out = (text: string) => process.stdout.write(`${redact(text)}\n`);

/** A one-shot command ends after its alert round (which runs beside a daemon's next pass). */
async function summarize(result: PassResult, log: Logger): Promise<number> {
  await result.alerted;
  for (const c of result.certs) {
    log.info(
      {
        step: 'report',
        cert: c.name,
        ...(c.keyType ? { keyType: c.keyType } : {}),
        ok: c.ok,
        decision: c.decision,
        issued: c.issued,
        published: c.published,
        error: c.error,
      },
      c.ok ? 'certificate ok' : 'certificate failed',
    );
  }
  return result.ok ? EXIT.ok : EXIT.failed;
}

/** Before anything is ordered: a publish that cannot succeed is a configuration problem (exit 78). */
async function refuseUnpublishable(config: Config): Promise<number | undefined> {
  const problem = await certsDirProblem(config);
  if (!problem) return undefined;
  process.stderr.write(`mailcerts: ${redact(problem)}\nNothing was ordered or published.\n`);
  return EXIT.config;
}

async function commandRun(config: Config, log: Logger, once: boolean): Promise<number> {
  const refused = await refuseUnpublishable(config);
  if (refused !== undefined) return refused;
  const engine = new Engine(config, log, defaultComponents(config, log));
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
  out('configuration: ok');
  for (const c of config.certificates)
    out(`  certificate ${c.name}: ${c.domains.join(', ')} (${c.keyTypes.join(' + ')}, ${c.challenge})`);
  out(`  published into ${config.certsDir}, state in ${config.stateDir}`);
  const publishProblem = await certsDirProblem(config);
  if (publishProblem) {
    ok = false;
    out(`CERTS_DIR: FAILED: ${publishProblem}`);
  } else {
    out(
      `CERTS_DIR: ok (mailcerts can write, chmod${config.files.owner !== undefined || config.files.group !== undefined ? ' and chown' : ''} the key files)`,
    );
  }
  const { configureAcmeHttp, getDirectory } = await import('./obtain/acme-http.js');
  configureAcmeHttp({ timeoutMs: config.acme.timeoutMs, retries: 1, retryAfterCapMs: 5_000 });
  try {
    const dir = await getDirectory(config.acme.directoryUrl);
    if (typeof dir.newOrder !== 'string')
      throw new UserError(
        `${config.acme.directoryUrl} answered, but it is not an ACME directory; check ACME_DIRECTORY`,
      );
    out(`CA directory: ok (${config.acme.directoryUrl})`);
  } catch (err) {
    ok = false;
    out(`CA directory: FAILED: ${errorMessage(err)}`);
  }
  const issuer = new AcmeIssuer(config, log);
  for (const spec of config.certificates.filter(ordersByDns01)) {
    try {
      out(`DNS-01 (${spec.dnsProvider}) for ${spec.name}: ok (${await issuer.preflight(spec)})`);
    } catch (err) {
      ok = false;
      out(`DNS-01 (${spec.dnsProvider}) for ${spec.name}: FAILED: ${errorMessage(err)}`);
    }
  }
  // DANE: a warning only (the records are still kept), but a clear one: without DNSSEC, DANE is void.
  if (config.certificates.some((c) => c.dane))
    for (const line of await (await import('./report/dane.js')).daneDnssecCheck(config, log)) out(line);
  if (!config.docker.reload) {
    out('Docker: reloading is off (DOCKER_RELOAD=false)');
  } else {
    ok = (await checkDocker(config)) && ok;
  }
  log.debug({ step: 'check', ok }, 'check done');
  return ok ? EXIT.ok : EXIT.failed;
}

/** The Docker side of `check`: reachable, which project is in scope, what would be reloaded and how. */
async function checkDocker(config: Config): Promise<boolean> {
  const [
    { connectDocker, pingDocker },
    { resolveScope, discoverTargets },
    { describeReload, labelProblems, RELOAD_LABEL },
  ] = await Promise.all([import('./deploy/docker.js'), import('./deploy/scope.js'), import('./deploy/kinds/index.js')]);
  let ok = true;
  try {
    const docker = connectDocker();
    await pingDocker(docker);
    const scope = await resolveScope(docker, config.docker.scope, runsInContainer());
    const targets = await discoverTargets(docker, scope);
    const where =
      scope.project === '*'
        ? 'on this host (DOCKER_SCOPE=*: every compose project is trusted)'
        : `in the compose project ${scope.project}`;
    out(`Docker API: ok; ${targets.length} running container(s) ${where} carry ${RELOAD_LABEL}`);
    for (const t of targets) {
      const problems = labelProblems(t);
      if (problems.length > 0 || 'error' in t.action) {
        ok = false;
        for (const p of problems) out(`  ${t.name}: INVALID LABEL ${p}`);
      } else {
        out(`  ${t.name}: ${describeReload(t.action, t.labels)}`);
      }
    }
  } catch (err) {
    ok = false;
    out(`Docker API: FAILED: ${errorMessage(err)}`);
  }
  return ok;
}

/** `mailcerts proxy`: needs none of mailcerts' own configuration, only the PROXY_ variables. */
async function commandProxy(rest: string[]): Promise<number> {
  if (rest.length > 0) {
    process.stderr.write(
      `mailcerts proxy: takes no arguments (it is configured with PROXY_BIND, PROXY_SOCKET, PROXY_SWARM and PROXY_SCOPE)\n`,
    );
    return EXIT.usage;
  }
  const stop = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => stop.abort());
  const { runProxy } = await import('./proxy/index.js');
  try {
    await runProxy(process.env, stop.signal);
    return EXIT.ok;
  } catch (err) {
    process.stderr.write(`${errorMessage(err)}\nThe proxy did not start.\n`);
    return EXIT.config;
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return command ? EXIT.ok : EXIT.usage;
  }
  if (command === 'proxy') return commandProxy(rest);
  if (command === 'healthcheck') {
    // The same image runs the socket proxy, whose container has the same HEALTHCHECK.
    const proxy = await (await import('./proxy/health.js')).proxyHealth();
    if (proxy !== undefined) {
      process.stdout.write(`${proxy}\n`);
      return proxy.startsWith('healthy') ? EXIT.ok : EXIT.failed;
    }
  }
  const options = {
    run: { once: { type: 'boolean' } },
    renew: { force: { type: 'boolean' }, 'key-type': { type: 'string' } },
    status: { json: { type: 'boolean' } },
    check: {},
    healthcheck: {},
    dane: {},
    'stack-file': { 'compose-version': { type: 'string' } },
  } as const;
  if (!(command in options)) {
    process.stderr.write(`mailcerts: unknown command "${command}"\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  let args: { values: Record<string, unknown>; positionals: string[] };
  try {
    args = parseArgs({
      args: rest,
      options: options[command as keyof typeof options],
      allowPositionals: command === 'renew' || command === 'dane',
      strict: true,
    });
  } catch (err) {
    process.stderr.write(`mailcerts ${command}: ${errorMessage(err)}\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  let config: Config;
  try {
    config = loadConfig(process.env, { parts: CONFIG_PARTS, ...(await configParsers(process.env)) });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`mailcerts: ${err.message}\nNothing was changed.\n`);
      return EXIT.config;
    }
    throw err;
  }
  // One redaction for logs, state and status, from here on.
  registerSecrets([...config.secrets, config.acme.eab?.hmacKey]);
  // Human output (status, check) keeps stdout; logs then go to stderr.
  const toStderr =
    command === 'status' ||
    command === 'check' ||
    command === 'healthcheck' ||
    command === 'dane' ||
    command === 'stack-file';
  const format = config.logFormat ?? ((toStderr ? process.stderr : process.stdout).isTTY ? 'text' : 'json');
  const log = createLogger(config.logLevel, toStderr ? stderrDestination() : undefined, format);
  const values = args.values as Record<string, boolean | undefined>;
  try {
    switch (command) {
      case 'run':
        return await commandRun(config, log, values.once ?? false);
      case 'renew': {
        const refused = await refuseUnpublishable(config);
        if (refused !== undefined) return refused;
        const only = args.positionals[0];
        const keyType = (args.values as Record<string, string | undefined>)['key-type'];
        const known = config.certificates.filter((c) => !only || c.name === only).flatMap((c) => c.keyTypes);
        if (keyType !== undefined && !known.includes(keyType as KeyType)) {
          process.stderr.write(
            `mailcerts renew: --key-type ${keyType} is not a key type of ${only ? `"${only}"` : 'any certificate'}; configured: ${[...new Set(known)].join(', ')}\n`,
          );
          return EXIT.usage;
        }
        return await summarize(
          await new Engine(config, log, defaultComponents(config, log)).pass({
            force: values.force ?? false,
            only,
            forceKeyType: keyType,
          }),
          log,
        );
      }
      case 'status': {
        const rows = await collectStatus(config);
        out(values.json ? JSON.stringify(rows, null, 2) : formatStatusTable(rows));
        if (!values.json && (config.alerts.email || config.alerts.webhook)) {
          const undelivered = await (await import('./alerts/notify.js')).undeliveredAlerts(config.stateDir);
          if (undelivered) out(undelivered);
        }
        return health(rows).ok && rows.every((r) => !r.lastError) ? EXIT.ok : EXIT.failed;
      }
      case 'check':
        return await commandCheck(config, log);
      case 'dane': {
        const { daneReport, formatDane, requestRollover } = await import('./report/dane.js');
        const [sub, name, ...extra] = args.positionals;
        if (sub === 'rollover' && extra.length === 0) {
          const asked = await requestRollover(config, log, name);
          out(
            `rollover asked for: ${asked.join(', ')}. It happens at the next pass once each next key's TLSA record has been answered by every authoritative server for twice the TTL; see mailcerts dane.`,
          );
          return EXIT.ok;
        }
        if (sub !== undefined) {
          process.stderr.write(`mailcerts dane: use "mailcerts dane" or "mailcerts dane rollover [NAME]"\n`);
          return EXIT.usage;
        }
        const rows = await daneReport(config, log);
        out(formatDane(rows, config));
        return rows.every((r) => !r.state.startsWith('OUT OF STEP')) ? EXIT.ok : EXIT.failed;
      }
      case 'stack-file': {
        const mode = deployModeOf(config);
        if (!mode.stackFile) {
          const withOne = DEPLOY_MODES.filter((m) => m.stackFile).map((m) => `DEPLOY_MODE=${m.name}`);
          process.stderr.write(
            `mailcerts stack-file: only with ${withOne.join(' or ')}; in ${mode.name} mode the files are in CERTS_DIR\n`,
          );
          return EXIT.usage;
        }
        const version = (args.values as Record<string, string | undefined>)['compose-version'];
        if (version !== undefined && !/^3(\.\d{1,2})?$/.test(version)) {
          process.stderr.write(
            `mailcerts stack-file: --compose-version ${version}: give the version: line of the stack file, such as 3.8\n`,
          );
          return EXIT.usage;
        }
        out((await mode.stackFile(config, log, version)).trimEnd());
        return EXIT.ok;
      }
      case 'healthcheck': {
        // The image's HEALTHCHECK: the same verdict as /healthz, read from the files, whatever
        // STATUS_ADDRESS is (off, an address of its own, IPv6).
        const h = health(await collectStatus(config));
        out(h.ok ? 'healthy' : `unhealthy: ${h.problems.join('; ')}`);
        return h.ok ? EXIT.ok : EXIT.failed;
      }
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
    process.stderr.write(`mailcerts: ${redact(errorMessage(err))}\n`);
    process.exitCode = EXIT.failed;
  },
);
