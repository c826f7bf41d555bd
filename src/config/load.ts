import { isIP } from 'node:net';
import { readFileSync, statSync } from 'node:fs';
import { certificatesOf, usedDnsProviders } from './certificates.js';
import { readConfigFile, type YamlParser } from './config-file.js';
import { describe } from './issues.js';
import type { ConfigParts } from './parts.js';
import { DNS_PROVIDER_DEFINITIONS } from '../dns/providers/index.js';
import { runsInContainer } from '../util/container.js';
import { redactWith } from '../util/redact.js';
import {
  type CertificateSpec,
  type Config,
  type ConfigFile,
  type DockerConfig,
  type Env,
  envSchema,
  NEEDS_EAB,
  SECRET_KEYS,
} from './schema.js';
import { CodedError } from '../util/error-codes.js';

export { configParsers, type YamlParser } from './config-file.js';

/** What the deploy modes add to config.docker. */
type ModeSettings = Omit<DockerConfig, 'reload' | 'scope' | 'verifyHosts' | 'mode'>;

/** Every problem found in the configuration, each naming its variable and what to change. */
export class ConfigError extends CodedError {
  override name = 'ConfigError';
  readonly problems: string[];
  constructor(problems: string[]) {
    super('MC_CONFIG', `Invalid configuration (MC_CONFIG):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

/** Reads NAME or NAME_FILE (Docker secrets) for every known variable; empty means unset. */
function readEnv(
  env: NodeJS.ProcessEnv,
  keys: string[],
  problems: string[],
  files: Map<string, string>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of keys) {
    const direct = env[key];
    const file = env[`${key}_FILE`];
    if (direct && file) {
      problems.push(`${key}: set either ${key} or ${key}_FILE, not both`);
      continue;
    }
    if (file) {
      try {
        if (statSync(file).size > 65_536) throw Object.assign(new Error('too large'), { code: 'larger than 64 KiB' });
        out[key] = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
        files.set(key, file);
      } catch (err) {
        problems.push(
          `${key}_FILE: cannot read "${file}" (${(err as NodeJS.ErrnoException).code ?? 'error'}); mount the secret file there or fix the path`,
        );
      }
    } else if (direct !== undefined && direct !== '') {
      out[key] = direct;
    }
  }
  return out;
}

export interface LoadOptions {
  /** The certificate sources and deploy modes (src/parts.ts: the registries, which sit above config). */
  parts: ConfigParts;
  /** Whether mailcerts runs in a container (then it can find its own compose project). */
  inContainer?: boolean;
  /** Needed for a YAML config file: see configParsers(). */
  yaml?: YamlParser;
}

/** Builds the configuration from the environment (and MAILCERTS_CONFIG); throws ConfigError listing every problem. */
export function loadConfig(env: NodeJS.ProcessEnv, opts: LoadOptions): Config {
  const problems: string[] = [];
  const { raw, parsed, file } = parseEnvironment(env, opts, problems);
  checkCombinations(raw, problems);
  const secrets = secretsOf(raw);
  const scrub = (list: string[]) => list.map((p) => redactWith(secrets, p));
  if (problems.length > 0 || !parsed) throw new ConfigError(scrub(problems));

  const certificates = certificatesOf(opts.parts, parsed, file, problems);
  const providers = dnsProviderSettings(opts.parts, parsed, certificates, problems);
  if (parsed.ALERT_EMAIL && !parsed.ALERT_SMTP)
    problems.push(
      "ALERT_SMTP: ALERT_EMAIL needs the SMTP submission server to send through, such as smtp://postfix:587 (the stack's Postfix, with STARTTLS) or smtps://user:password@smtp.example.com:465",
    );
  const inContainer = opts.inContainer ?? runsInContainer();
  // The deploy mode checks what it needs (deploy/modes/<name>/index.ts).
  opts.parts.modes
    .find((m) => m.name === parsed.DEPLOY_MODE)
    ?.check?.(parsed as Record<string, unknown>, { inContainer }, problems);
  if (problems.length > 0) throw new ConfigError(scrub(problems));
  return configOf(parsed, { certificates, providers, secrets, parts: opts.parts });
}

/** The variables as given (NAME or NAME_FILE), the schema's reading of them, and the config file it names. */
function parseEnvironment(env: NodeJS.ProcessEnv, opts: LoadOptions, problems: string[]) {
  const files = new Map<string, string>();
  const schema = envSchema(opts.parts);
  const raw = readEnv(env, Object.keys(schema.shape), problems, files);
  const result = schema.safeParse(raw);
  if (!result.success) for (const issue of result.error.issues) problems.push(describe('', issue, files));
  const parsed: Env | undefined = result.success ? result.data : undefined;
  const file: ConfigFile | undefined =
    raw.MAILCERTS_CONFIG && parsed?.MAILCERTS_CONFIG
      ? readConfigFile(parsed.MAILCERTS_CONFIG, opts.parts, problems, opts.yaml)
      : undefined;
  return { raw, parsed, file };
}

/** Variables that only make sense together, or not at all together. */
function checkCombinations(raw: Record<string, string>, problems: string[]): void {
  if (!!raw.ACME_EAB_KID !== !!raw.ACME_EAB_HMAC_KEY) {
    problems.push(
      `${raw.ACME_EAB_KID ? 'ACME_EAB_HMAC_KEY' : 'ACME_EAB_KID'}: external account binding needs both ACME_EAB_KID and ACME_EAB_HMAC_KEY (or _FILE)`,
    );
  } else if (!raw.ACME_EAB_KID && NEEDS_EAB.has(raw.ACME_DIRECTORY ?? '')) {
    problems.push(
      `ACME_EAB_KID: ${raw.ACME_DIRECTORY} requires external account binding: set ACME_EAB_KID and ACME_EAB_HMAC_KEY from your account at the CA`,
    );
  }
  if (raw.HTTP01_MODE === 'webroot' && !raw.HTTP01_WEBROOT) {
    problems.push(
      'HTTP01_WEBROOT: is required when HTTP01_MODE=webroot: set it to the document root your web server serves on port 80',
    );
  }
  if (raw.MAILCERTS_CONFIG && raw.ACME_DOMAINS) {
    problems.push('ACME_DOMAINS: set either ACME_DOMAINS or the certificates in MAILCERTS_CONFIG, not both');
  } else if (!raw.MAILCERTS_CONFIG && !raw.ACME_DOMAINS) {
    problems.push(
      'ACME_DOMAINS: is required: set the names of the mail server, such as mail.example.com,smtp.example.com (or list certificates in MAILCERTS_CONFIG)',
    );
  }
}

/** The values to redact wherever they would be shown: the secret variables, and passwords inside alert URLs. */
function secretsOf(raw: Record<string, string>): string[] {
  const secrets = SECRET_KEYS.map((k) => raw[k]).filter((v): v is string => !!v && v.length >= 8);
  // A password inside an alert URL is a secret of its own (the URL may be printed normalized).
  for (const k of ['ALERT_SMTP', 'ALERT_WEBHOOK']) {
    try {
      const u = new URL(raw[k] ?? '');
      for (const part of [decodeURIComponent(u.password), u.href]) if (part.length >= 4) secrets.push(part);
    } catch {
      /* not a URL: reported by the schema */
    }
  }
  return secrets;
}

/** Each DNS provider reads and checks its own variables; one a certificate uses must be complete. */
function dnsProviderSettings(
  parts: ConfigParts,
  e: Env,
  certificates: CertificateSpec[],
  problems: string[],
): Record<string, unknown> {
  const used = usedDnsProviders(parts, certificates);
  const providers: Record<string, unknown> = {};
  for (const def of DNS_PROVIDER_DEFINITIONS) {
    const settings = def.settings(e as Record<string, unknown>, used.has(def.name), problems);
    if (settings !== undefined) providers[def.name] = settings;
  }
  return providers;
}

interface Checked {
  certificates: CertificateSpec[];
  providers: Record<string, unknown>;
  secrets: string[];
  parts: ConfigParts;
}

/** The configuration the rest of mailcerts reads, from variables that passed every check. */
function configOf(e: Env, { certificates, providers, secrets, parts }: Checked): Config {
  const firstName = certificates[0]!.domains.find((d) => !d.startsWith('*.')) ?? 'localhost';
  return {
    certificates,
    acme: {
      directoryUrl: e.ACME_DIRECTORY.url,
      directoryName: e.ACME_DIRECTORY.name,
      email: e.ACME_EMAIL,
      timeoutMs: e.ACME_TIMEOUT,
      concurrency: e.ACME_CONCURRENCY,
      profile: e.ACME_PROFILE,
      preferredChain: e.ACME_PREFERRED_CHAIN,
      reuseKey: e.ACME_REUSE_KEY,
      eab: e.ACME_EAB_KID && e.ACME_EAB_HMAC_KEY ? { kid: e.ACME_EAB_KID, hmacKey: e.ACME_EAB_HMAC_KEY } : undefined,
    },
    http01: { mode: e.HTTP01_MODE, port: e.HTTP01_PORT, address: e.HTTP01_ADDRESS, webroot: e.HTTP01_WEBROOT },
    dns: { resolvers: e.DNS01_RESOLVERS, propagationTimeoutMs: e.DNS01_PROPAGATION_TIMEOUT, providers },
    secrets,
    certsDir: e.CERTS_DIR,
    sniCertsPath: e.SNI_CERTS_PATH.replace(/\/+$/, '') || '/',
    stateDir: e.STATE_DIR,
    files: { keyMode: e.KEY_FILE_MODE, certMode: 0o644, owner: e.KEY_FILE_OWNER, group: e.KEY_FILE_GROUP },
    renewCheckIntervalMs: e.RENEW_CHECK_INTERVAL,
    // Loopback by default, in the image too: the HEALTHCHECK runs inside the container. Exposing it is a choice.
    statusAddress: e.STATUS_ADDRESS === 'off' ? undefined : (e.STATUS_ADDRESS ?? { host: '127.0.0.1', port: 9090 }),
    docker: dockerOf(e, parts),
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    alerts: alertsOf(e, firstName),
  };
}

function dockerOf(e: Env, parts: ConfigParts): DockerConfig {
  return {
    reload: e.DOCKER_RELOAD,
    scope: e.DOCKER_SCOPE,
    verifyHosts: e.VERIFY_HOSTS?.includes('*') ? '*' : (e.VERIFY_HOSTS ?? []).map((h) => h.toLowerCase()),
    mode: e.DEPLOY_MODE,
    // Every mode's settings, whichever is chosen: they are declared on DockerConfig by each mode.
    ...(Object.assign({}, ...parts.modes.map((m) => m.settings?.(e as Record<string, unknown>))) as ModeSettings),
  };
}

function alertsOf(e: Env, firstName: string): Config['alerts'] {
  return {
    email:
      e.ALERT_EMAIL && e.ALERT_SMTP
        ? {
            to: e.ALERT_EMAIL,
            smtp: e.ALERT_SMTP,
            from: e.ALERT_FROM ?? `mailcerts@${firstName}`,
            servername: smtpServername(e.ALERT_SMTP, firstName),
          }
        : undefined,
    webhook: e.ALERT_WEBHOOK ? { url: e.ALERT_WEBHOOK, format: e.ALERT_WEBHOOK_FORMAT } : undefined,
    afterMs: e.ALERT_AFTER,
    expiryMs: e.ALERT_EXPIRY,
  };
}

/**
 * The name the alert SMTP server's certificate must carry: ?servername=, else the host when it is
 * a DNS name, else (an address, or a container name such as postfix) the stack's first name,
 * which is what the labelled Postfix serves.
 */
function smtpServername(smtp: string, firstName: string): string {
  const url = new URL(smtp);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return url.searchParams.get('servername') ?? (isIP(host) === 0 && host.includes('.') ? host : firstName);
}
