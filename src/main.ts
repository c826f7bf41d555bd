import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import { type CommandContext, EXIT } from './commands/common.js';
import { ConfigError, configParsers, loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { createLogger, type Logger, stderrDestination } from './log.js';
import { errorMessage } from './util/errors.js';
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

interface Command {
  options: ParseArgsOptionsConfig;
  /** Takes names after its options (renew NAME, dane rollover NAME). */
  positionals?: boolean;
  /** Prints for people on stdout (status, check): its logs then go to stderr. */
  human?: boolean;
  run(ctx: CommandContext): Promise<number>;
}

type Handler = (ctx: CommandContext) => Promise<number>;
// Each command's module loads only when it runs: the daemon never holds check's, status' or the
// proxy's code (measured in bench/footprint.mjs). Each import() stays literal, so that the bundler
// makes a chunk of it.
const lazy =
  <M>(load: () => Promise<M>, pick: (m: M) => Handler): Handler =>
  async (ctx) =>
    pick(await load())(ctx);
const run = () => import('./commands/run.js');
const report = () => import('./commands/report.js');

/** The commands that read mailcerts' configuration (proxy reads only its own). */
const COMMANDS: Record<string, Command> = {
  run: { options: { once: { type: 'boolean' } }, run: lazy(run, (m) => m.commandRun) },
  renew: {
    options: { force: { type: 'boolean' }, 'key-type': { type: 'string' } },
    positionals: true,
    run: lazy(run, (m) => m.commandRenew),
  },
  status: { options: { json: { type: 'boolean' } }, human: true, run: lazy(report, (m) => m.commandStatus) },
  check: {
    options: {},
    human: true,
    run: lazy(
      () => import('./commands/check.js'),
      (m) => m.commandCheck,
    ),
  },
  healthcheck: { options: {}, human: true, run: lazy(report, (m) => m.commandHealthcheck) },
  dane: { options: {}, positionals: true, human: true, run: lazy(report, (m) => m.commandDane) },
  'stack-file': {
    options: { 'compose-version': { type: 'string' } },
    human: true,
    run: lazy(report, (m) => m.commandStackFile),
  },
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return command ? EXIT.ok : EXIT.usage;
  }
  if (command === 'proxy') return (await import('./commands/proxy.js')).commandProxy(rest);
  if (command === 'healthcheck') {
    const proxy = await (await import('./commands/proxy.js')).proxyHealthcheck();
    if (proxy !== undefined) return proxy;
  }
  const spec = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!spec) {
    process.stderr.write(`mailcerts: unknown command "${command}"\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  const args = parseCommandArgs(command, spec, rest);
  if (typeof args === 'number') return args;
  const config = await readConfig();
  if (typeof config === 'number') return config;
  // One redaction for logs, state and status, from here on.
  registerSecrets([...config.secrets, config.acme.eab?.hmacKey]);
  const log = loggerFor(config, spec.human ?? false);
  try {
    return await spec.run({ config, log, ...args });
  } catch (err) {
    log.error({ step: 'report', error: errorMessage(err) }, 'mailcerts failed');
    return EXIT.failed;
  }
}

/** The command's options and names, or the usage exit code. */
function parseCommandArgs(command: string, spec: Command, rest: string[]) {
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      options: spec.options,
      allowPositionals: spec.positionals ?? false,
      strict: true,
    });
    return { values: values as CommandContext['values'], positionals };
  } catch (err) {
    process.stderr.write(`mailcerts ${command}: ${errorMessage(err)}\n\n${USAGE}\n`);
    return EXIT.usage;
  }
}

/** The configuration, or exit 78 with every problem listed. */
async function readConfig(): Promise<Config | number> {
  try {
    return loadConfig(process.env, { parts: CONFIG_PARTS, ...(await configParsers(process.env)) });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`mailcerts: ${err.message}\nNothing was changed.\n`);
      return EXIT.config;
    }
    throw err;
  }
}

/** Human output (status, check) keeps stdout; logs then go to stderr. */
function loggerFor(config: Config, human: boolean): Logger {
  const format = config.logFormat ?? ((human ? process.stderr : process.stdout).isTTY ? 'text' : 'json');
  return createLogger(config.logLevel, human ? stderrDestination() : undefined, format);
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
