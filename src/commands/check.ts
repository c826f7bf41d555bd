import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { AcmeIssuer } from '../obtain/issuer.js';
import { ordersByDns01 } from '../obtain/sources/index.js';
import { certsDirProblem } from '../run/preflight.js';
import { runsInContainer } from '../util/container.js';
import { errorMessage, UserError } from '../util/errors.js';
import { type CommandContext, EXIT, out } from './common.js';

/** `mailcerts check`: the configuration, CERTS_DIR, the CA, DNS-01, DANE's DNSSEC and the Docker side. */
export async function commandCheck({ config, log }: CommandContext): Promise<number> {
  out('configuration: ok');
  for (const c of config.certificates)
    out(`  certificate ${c.name}: ${c.domains.join(', ')} (${c.keyTypes.join(' + ')}, ${c.challenge})`);
  out(`  published into ${config.certsDir}, state in ${config.stateDir}`);
  let ok = await checkCertsDir(config);
  ok = (await checkCa(config)) && ok;
  ok = (await checkDns01(config, log)) && ok;
  // DANE: a warning only (the records are still kept), but a clear one: without DNSSEC, DANE is void.
  if (config.certificates.some((c) => c.dane))
    for (const line of await (await import('../report/dane.js')).daneDnssecCheck(config, log)) out(line);
  if (!config.docker.reload) {
    out('Docker: reloading is off (DOCKER_RELOAD=false)');
  } else {
    ok = (await checkDocker(config)) && ok;
  }
  log.debug({ step: 'check', ok }, 'check done');
  return ok ? EXIT.ok : EXIT.failed;
}

async function checkCertsDir(config: Config): Promise<boolean> {
  const publishProblem = await certsDirProblem(config);
  if (publishProblem) {
    out(`CERTS_DIR: FAILED: ${publishProblem}`);
    return false;
  }
  out(
    `CERTS_DIR: ok (mailcerts can write, chmod${config.files.owner !== undefined || config.files.group !== undefined ? ' and chown' : ''} the key files)`,
  );
  return true;
}

async function checkCa(config: Config): Promise<boolean> {
  const { configureAcmeHttp, getDirectory } = await import('../obtain/acme-http.js');
  configureAcmeHttp({ timeoutMs: config.acme.timeoutMs, retries: 1, retryAfterCapMs: 5_000 });
  try {
    const dir = await getDirectory(config.acme.directoryUrl);
    if (typeof dir.newOrder !== 'string')
      throw new UserError(
        `${config.acme.directoryUrl} answered, but it is not an ACME directory; check ACME_DIRECTORY`,
      );
    out(`CA directory: ok (${config.acme.directoryUrl})`);
    return true;
  } catch (err) {
    out(`CA directory: FAILED: ${errorMessage(err)}`);
    return false;
  }
}

async function checkDns01(config: Config, log: Logger): Promise<boolean> {
  let ok = true;
  const issuer = new AcmeIssuer(config, log);
  for (const spec of config.certificates.filter(ordersByDns01)) {
    try {
      out(`DNS-01 (${spec.dnsProvider}) for ${spec.name}: ok (${await issuer.preflight(spec)})`);
    } catch (err) {
      ok = false;
      out(`DNS-01 (${spec.dnsProvider}) for ${spec.name}: FAILED: ${errorMessage(err)}`);
    }
  }
  return ok;
}

/** The Docker side of `check`: reachable, which project is in scope, what would be reloaded and how. */
async function checkDocker(config: Config): Promise<boolean> {
  const [
    { connectDocker, pingDocker },
    { resolveScope, discoverTargets },
    { describeReload, labelProblems, RELOAD_LABEL },
  ] = await Promise.all([
    import('../deploy/docker.js'),
    import('../deploy/scope.js'),
    import('../deploy/kinds/index.js'),
  ]);
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
