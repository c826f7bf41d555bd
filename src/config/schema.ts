import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
// zod/mini: the same checks as zod's classic API at a fraction of its memory (it loads only what is used).
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { DNS_PROVIDER_DEFINITIONS } from '../dns/providers/index.js';
import { algorithmOf, KEY_TYPES, type KeyType } from '../pki/key-types.js';
import { absolutePath, bool, duration, matching, stringTo } from './fields.js';
import { splitHostPort } from '../util/host-port.js';
import type { ConfigParts } from './parts.js';
import { CHALLENGES, LOG_LEVELS } from './types.js';
import { settingBounds } from './setting-doc.js';

// The key types are one table (pki/key-types.ts).
export { type Algorithm, algorithmOf, KEY_TYPES, type KeyType } from '../pki/key-types.js';
// What the rest of mailcerts reads: the configuration's types (types.ts), re-exported here.
export * from './types.js';
export const DNS_PROVIDERS = DNS_PROVIDER_DEFINITIONS.map((d) => d.name);

export const DIRECTORIES: Record<string, string> = {
  letsencrypt: 'https://acme-v02.api.letsencrypt.org/directory',
  'letsencrypt-staging': 'https://acme-staging-v02.api.letsencrypt.org/directory',
  zerossl: 'https://acme.zerossl.com/v2/DV90',
  buypass: 'https://api.buypass.com/acme/directory',
  'buypass-staging': 'https://api.test4.buypass.no/acme/directory',
  google: 'https://dv.acme-v02.api.pki.goog/directory',
  'google-staging': 'https://dv.acme-v02.test-api.pki.goog/directory',
};
/** CAs that refuse accounts without external account binding. */
export const NEEDS_EAB = new Set(['zerossl', 'google', 'google-staging']);

// zod/mini leaves its own messages generic until a locale is set (an unknown key, a wrong type).
z.config(en());

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * A name as certificates and SNI carry it: lower case, internationalized names in their A-label
 * (xn--) form. Undefined when it cannot be converted.
 */
/** Whether a name is all ASCII (else it is an internationalized name in its U-label form). */
const isAscii = (s: string) => [...s].every((c) => c.charCodeAt(0) < 0x80);

export function aLabelName(raw: string): string | undefined {
  const name = raw.trim().toLowerCase();
  if (isAscii(name)) return name;
  const wildcard = name.startsWith('*.');
  const ascii = domainToASCII(wildcard ? name.slice(2) : name);
  return ascii ? `${wildcard ? '*.' : ''}${ascii}` : undefined;
}

/** Why a DNS name is unusable, or undefined when it is fine. Expects lower case. */
export function dnsNameProblem(name: string): string | undefined {
  const bare = name.startsWith('*.') ? name.slice(2) : name;
  if (!isAscii(name)) return 'is not a valid internationalized name';
  if (bare.includes('*')) return 'a wildcard is only allowed as the whole first label, as in *.example.com';
  if (bare.length > 253) return 'is longer than 253 characters';
  if (isIP(bare)) return 'is an IP address; certificates here are for DNS names only';
  const labels = bare.split('.');
  if (!labels.every((l) => LABEL.test(l))) return 'is not a valid DNS name (letters, digits and hyphens between dots)';
  if (labels.length < 2) return 'needs at least two labels, as in mail.example.com';
  if (/^\d+$/.test(labels.at(-1)!)) return 'ends in an all-numeric label, which no top-level domain is';
  return undefined;
}

/**
 * A list of DNS names, lower-cased, IDNs as A-labels (what the CA, the certificate and SNI use);
 * each bad or repeated name is reported at its position.
 */
const domainList = z.pipe(
  z.array(z.string()).check((ctx) => {
    if (ctx.value.length === 0)
      ctx.issues.push({ code: 'custom', input: ctx.value, message: 'needs at least one name' });
    const seen = new Set<string>();
    ctx.value.forEach((raw, i) => {
      const name = aLabelName(raw) ?? raw.trim().toLowerCase();
      const problem = dnsNameProblem(name);
      if (problem)
        ctx.issues.push({ code: 'custom', input: raw, path: [i], message: `"${name}" ${problem}`, continue: true });
      else if (seen.has(name))
        ctx.issues.push({
          code: 'custom',
          input: raw,
          path: [i],
          message: `"${name}" is listed twice`,
          continue: true,
        });
      seen.add(name);
    });
  }),
  z.transform((names: string[]) => names.map((n) => aLabelName(n) ?? n.trim().toLowerCase())),
);

const csv = z.pipe(
  z.string(),
  z.transform((s: string) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  ),
);

/** A comma list whose every item is checked: `problem` says what is wrong with one, or undefined. */
const csvOf = (problem: (item: string) => string | undefined) =>
  csv.check((ctx) => {
    for (const item of ctx.value) {
      const message = problem(item);
      if (message) ctx.issues.push({ code: 'custom', input: item, message, continue: true });
    }
  });

const certName = matching(
  /^[a-z0-9][a-z0-9._-]{0,63}$/,
  'use 1-64 lower-case letters, digits, dots, hyphens or underscores, starting with a letter or digit',
);

/** Why a list of key types is unusable: an unknown one, one listed twice, two of one algorithm. */
export function keyTypesProblem(list: string[]): string | undefined {
  if (list.length === 0) return `list at least one key type: ${KEY_TYPES.join(', ')}`;
  const unknown = list.find((k) => !(KEY_TYPES as readonly string[]).includes(k));
  if (unknown !== undefined)
    return `"${unknown}" is not a key type; use one of ${KEY_TYPES.join(', ')}, or two of them for dual certificates, as in ec-256,rsa-2048`;
  const twice = list.find((k, i) => list.indexOf(k) !== i);
  if (twice) return `"${twice}" is listed twice`;
  const same = list.find((k, i) => list.findIndex((o) => algorithmOf(o) === algorithmOf(k)) !== i);
  if (same)
    return `${list.filter((k) => algorithmOf(k) === algorithmOf(same)).join(' and ')} are both ${algorithmOf(same)?.toUpperCase()}: Postfix and Dovecot serve one key of each algorithm; keep one of them`;
  return undefined;
}

/** ACME_KEY_TYPE, or keyType in the config file: one key type, or a comma list (or YAML list) of one ECDSA and one RSA. */
const keyTypes = z.pipe(
  z.union([z.string(), z.array(z.string())], {
    error: () => 'use a key type such as ec-256, or a list such as ec-256,rsa-2048',
  }),
  z.transform((v: string | string[], ctx) => {
    const list = (typeof v === 'string' ? v.split(',') : v).map((k) => k.trim()).filter(Boolean);
    const problem = keyTypesProblem(list);
    if (problem) {
      ctx.issues.push({ code: 'custom', input: v, message: problem });
      return z.NEVER;
    }
    return list as KeyType[];
  }),
);
const challenge = z.enum(CHALLENGES, { error: () => `use one of ${CHALLENGES.join(', ')}` });

/** Where plain http cannot be read or changed on the way. */
const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

function webhookProblem(url: URL | undefined): string | undefined {
  if (!url || !['http:', 'https:'].includes(url.protocol))
    return 'use an http(s):// URL, such as https://ntfy.sh/my-topic or a Slack incoming webhook';
  // fetch refuses such a URL, so every alert would fail
  if (url.username || url.password)
    return "a user name or password in the URL (user:pass@) cannot be sent; use the token the service puts in the URL's path or query (a Slack webhook URL, ntfy's ?auth=)";
  // In clear text, the alert and the URL's token could be read and changed on the way
  if (url.protocol === 'http:' && !LOOPBACK_HOST.test(url.hostname))
    return 'use https://; plain http:// only to a loopback address (127.0.0.1, [::1], localhost)';
  return undefined;
}

const fileMode = stringTo((s, ctx) => {
  if (!/^0?[0-7]{3}$/.test(s)) {
    ctx.issues.push({ code: 'custom', input: s, message: `"${s}" is not an octal file mode such as 0600 or 0640` });
    return z.NEVER;
  }
  const mode = parseInt(s, 8);
  if (mode & 0o007) {
    ctx.issues.push({
      code: 'custom',
      input: s,
      message: `${s} lets every local user read the private key; use 0600, or 0640 with KEY_FILE_GROUP`,
    });
    return z.NEVER;
  }
  return mode;
});

/** A whole number from min to max, written in decimal digits. */
const wholeNumber = (min: number, max: number, messages: { digits: string; min: string; max: string }) =>
  z
    .pipe(
      z.pipe(matching(/^\d+$/, messages.digits), z.transform(Number)),
      z.int().check(z.gte(min, messages.min), z.lte(max, messages.max)),
    )
    .register(settingBounds, { values: `${min} to ${max}` });

/** A uid or gid as chown takes it: 4294967295 is (uid_t)-1, which chown reads as "leave it unchanged". */
const numericId = (what: string) => {
  const digits = `use the numeric ${what} id as the mail containers see it, such as 0 or 101`;
  return wholeNumber(0, 4294967294, {
    digits,
    min: digits,
    max: `use a numeric ${what} id from 0 to 4294967294 (4294967295 is -1, which chown takes as "leave unchanged")`,
  });
};

const PORT_MESSAGE = 'use a port number between 1 and 65535';
const port = wholeNumber(1, 65535, { digits: PORT_MESSAGE, min: PORT_MESSAGE, max: PORT_MESSAGE });

const dnsProvider = z.enum(DNS_PROVIDERS as [string, ...string[]], {
  error: () => `use one of ${DNS_PROVIDERS.join(', ')}`,
});

/** "1.1.1.1", "1.1.1.1:53", "[2606:4700::1111]:53" or "::1". */
function resolverProblem(s: string): string | undefined {
  const hp = splitHostPort(s, 53);
  if (!hp) return `"${s}" has a bad port`;
  if (isIP(hp.host) === 0)
    return `"${s}" is not an IP address (with an optional :port); name servers are given by address`;
  return undefined;
}

/** STATUS_ADDRESS: host:port, parsed once here. */
const listenAddress = stringTo((s, ctx) => {
  if (s === 'off') return 'off' as const;
  const hp = splitHostPort(s);
  if (!hp || (isIP(hp.host) === 0 && hp.host !== 'localhost')) {
    ctx.issues.push({
      code: 'custom',
      input: s,
      message: `"${s}" is not host:port with a port from 1 to 65535; use 127.0.0.1:9090, 0.0.0.0:9090 to expose it, or off`,
    });
    return z.NEVER;
  }
  return hp;
});

const COMPOSE_PROJECT = /^[a-z0-9][a-z0-9_-]{0,127}$/;

/**
 * The environment, one field per variable. Empty values count as unset (compose writes FOO= as "").
 * Built when the configuration is read and dropped after: a daemon does not keep a hundred field
 * schemas in memory for its lifetime.
 */
export const envSchema = (parts: ConfigParts) =>
  z.object({
    /**
     * Comma-separated names of one certificate. The first name also names it; `*.` becomes `wildcard.`. Use either
     * `ACME_DOMAINS` or `MAILCERTS_CONFIG`, not both.
     * @group certificates
     * @default (required)
     * @values DNS names, comma separated
     */
    ACME_DOMAINS: z.optional(z.pipe(csv, domainList)),
    /**
     * Contact address for the ACME account.
     * @group ca
     * @default none
     */
    ACME_EMAIL: z.optional(z.email({ error: () => 'use a mail address such as postmaster@example.com' })),
    /**
     * A preset or an `https://` directory URL.
     * @group ca
     * @default letsencrypt
     * @values `letsencrypt`, `letsencrypt-staging`, `zerossl`, `buypass`, `buypass-staging`, `google`,
     *   `google-staging`, or an `https://` URL
     */
    ACME_DIRECTORY: z._default(
      stringTo((s, ctx) => {
        const known = DIRECTORIES[s];
        if (known) return { name: s, url: known };
        let url: URL | undefined;
        try {
          url = new URL(s);
        } catch {
          /* reported below */
        }
        if (url?.protocol !== 'https:') {
          ctx.issues.push({
            code: 'custom',
            input: s,
            message: `"${s}" is neither a known CA (${Object.keys(DIRECTORIES).join(', ')}) nor an https:// directory URL`,
          });
          return z.NEVER;
        }
        return { name: url.host, url: url.href };
      }),
      { name: 'letsencrypt', url: DIRECTORIES.letsencrypt! },
    ),
    /**
     * How the CA checks the names. Wildcard names need `dns-01`. See [DNS-01](dns-01.md).
     * @group certificates
     * @default http-01
     */
    ACME_CHALLENGE: z._default(challenge, 'http-01'),
    /**
     * The key type, or one ECDSA and one RSA for dual certificates, e.g. `ec-256,rsa-2048` (see [dual
     * keys](dual-keys.md)). Changing it renews what changed.
     * @group certificates
     * @default ec-256
     * @values `ec-256`, `ec-384`, `rsa-2048`, `rsa-3072`, `rsa-4096`, or one ECDSA and one RSA, comma separated
     */
    ACME_KEY_TYPE: z._default(keyTypes, ['ec-256']),
    /**
     * DNS provider for `dns-01`: `cloudflare`, or `rfc2136` (dynamic updates signed with TSIG: BIND, Knot, PowerDNS,
     * Technitium; see [DNS-01 with your own name server](dns-01.md#your-own-name-server-rfc-2136)).
     * @group dns01
     * @default cloudflare
     */
    ACME_DNS_PROVIDER: z._default(dnsProvider, DNS_PROVIDERS[0]!),
    // Each DNS provider's own variables (dns/providers/<name>/index.ts).
    ...(Object.assign({}, ...DNS_PROVIDER_DEFINITIONS.map((d) => d.env)) as Record<string, z.ZodMiniType>),
    /**
     * Name servers to ask for the records instead.
     * @group dns01
     * @default each zone's authoritative servers
     * @values `ip[:port]` / `[ipv6]:port`, comma separated
     */
    DNS01_RESOLVERS: z.optional(csvOf(resolverProblem)),
    /**
     * How long to wait for the TXT records before giving up.
     * @group dns01
     * @default 180s
     */
    DNS01_PROPAGATION_TIMEOUT: z._default(duration(5_000, 3_600_000, '180s'), 180_000),
    /**
     * MX host names (each one of the certificate's names) whose TLSA records mailcerts keeps in step with the key;
     * per certificate in the config file as `dane: [mx.example.com]`.
     * @group dane
     * @default none
     * @values DNS names, comma separated
     */
    DANE_NAMES: z.optional(z.pipe(csv, domainList)),
    /**
     * Ports with a TLSA RRset at `_PORT._tcp.NAME`, e.g. `25,465`.
     * @group dane
     * @default 25
     * @values port numbers from 1 to 65535, comma separated
     */
    DANE_PORTS: z._default(
      z.pipe(
        csv,
        z.array(
          z.pipe(
            z.pipe(
              z.string().check(z.regex(/^\d{1,5}$/, 'use port numbers such as 25 or 25,465')),
              z.transform(Number),
            ),
            z.int().check(z.gte(1, PORT_MESSAGE), z.lte(65535, PORT_MESSAGE)),
          ),
        ),
      ),
      [25],
    ),
    // Short TTLs are for tests and labs; a resolver may still keep an RRset longer than asked.
    /**
     * The TLSA RRset's TTL. A rollover waits twice this after the next key's record is answered everywhere.
     * Cloudflare: at least 60 s.
     * @group dane
     * @default 3600s
     */
    DANE_TTL: z._default(duration(1_000, 86_400_000, '3600s'), 3_600_000),
    /**
     * The DNS provider that writes the TLSA records, or `none` to publish them by hand (`mailcerts dane` prints
     * them).
     * @group dane
     * @default the certificate's DNS-01 provider
     */
    DANE_PROVIDER: z.optional(
      z.enum(['none', ...DNS_PROVIDERS] as [string, ...string[]], {
        error: () => `use one of ${DNS_PROVIDERS.join(', ')}, or none to publish the records by hand`,
      }),
    ),
    /**
     * A key older than this is rolled over.
     * @group dane
     * @default 365d
     */
    DANE_KEY_LIFETIME: z._default(duration(86_400_000, 10 * 365 * 86_400_000, '365d'), 365 * 86_400_000),
    /**
     * Validating resolvers, such as the one your senders' side would use: the burn-in then counts only answers they
     * give with the DNSSEC AD bit.
     * @group dane
     * @default none
     * @values `ip[:port]`, comma separated
     */
    DANE_RESOLVER: z.optional(csvOf(resolverProblem)),
    /**
     * Timeout of each HTTP call to the CA.
     * @group ca
     * @default 30s
     */
    ACME_TIMEOUT: z._default(duration(1_000, 600_000, '30s'), 30_000),
    /**
     * How many certificates are ordered at the same time in a pass (1 orders them one after another, in configuration
     * order). See [the benchmark](benchmark.md).
     * @group ca
     * @default 4
     */
    ACME_CONCURRENCY: z._default(
      wholeNumber(1, 32, {
        digits: 'use a whole number from 1 (one certificate at a time) to 32',
        min: 'use a whole number from 1 (one certificate at a time) to 32',
        max: 'use a whole number from 1 to 32: a CA limits how many orders an account may have in flight',
      }),
      4,
    ),
    /**
     * Profile sent in newOrder (Let's Encrypt: `classic`, `tlsserver`, `shortlived`). Checked against the CA's list;
     * a change renews the certificate.
     * @group ca
     * @default none
     * @values a profile name the CA offers
     */
    ACME_PROFILE: z.optional(
      matching(/^[a-z0-9][a-z0-9_.-]{0,63}$/i, 'use a profile name the CA offers, such as tlsserver or shortlived'),
    ),
    /**
     * Issuer common name of the alternate chain to prefer, e.g. `ISRG Root X1`.
     * @group ca
     * @default the CA's default
     */
    ACME_PREFERRED_CHAIN: z.optional(z.string().check(z.minLength(1))),
    /**
     * Keep the private key across renewals, so that TLSA `3 1 1` records published by hand stay valid. A change of
     * `ACME_KEY_TYPE` still makes a new key. With `DANE_NAMES`, mailcerts keeps the key and its records itself.
     * @group ca
     * @default false
     */
    ACME_REUSE_KEY: z._default(bool, false),
    /**
     * External account binding key id; with `ACME_EAB_HMAC_KEY`, both or neither. Required by `zerossl` and `google`.
     * @group ca
     * @default none
     */
    ACME_EAB_KID: z.optional(z.string().check(z.minLength(1))),
    /**
     * External account binding HMAC key (base64url), given by the CA with the key id.
     * @group ca
     * @default none
     */
    ACME_EAB_HMAC_KEY: z.optional(
      matching(/^[A-Za-z0-9_=+/-]{16,}$/, 'use the base64url HMAC key the CA gave you with the key id'),
    ),
    /**
     * `standalone`: mailcerts' own listener. `webroot`: files for the web server that owns port 80.
     * @group http01
     * @default standalone
     */
    HTTP01_MODE: z._default(
      z.enum(['standalone', 'webroot'], { error: () => 'use standalone or webroot' }),
      'standalone',
    ),
    /**
     * Port of the standalone listener. Map the host's port 80 to it.
     * @group http01
     * @default 80
     */
    HTTP01_PORT: z._default(port, 80),
    /**
     * Address of the standalone listener.
     * @group http01
     * @default all interfaces, IPv4 and IPv6
     * @values an IP address
     */
    HTTP01_ADDRESS: z.optional(
      z
        .string()
        .check(
          z.refine((s) => isIP(s) !== 0, 'use an IP address such as 0.0.0.0 or ::; leave it unset for all interfaces'),
        ),
    ),
    /**
     * Document root for `webroot` mode; tokens go into `.well-known/acme-challenge/`. Required with
     * `HTTP01_MODE=webroot`.
     * @group http01
     * @default none
     * @values an absolute path
     */
    HTTP01_WEBROOT: z.optional(absolutePath("use an absolute path, the web server's document root")),
    /**
     * Where certificates are published (the shared volume).
     * @group files
     * @default /etc/ssl/mail
     * @values an absolute path
     */
    CERTS_DIR: z._default(absolutePath('use an absolute path'), '/etc/ssl/mail'),
    /**
     * Account key, account URL, per-certificate state. Mode 0700; files 0600.
     * @group files
     * @default /var/lib/mailcerts
     * @values an absolute path
     */
    STATE_DIR: z._default(absolutePath('use an absolute path'), '/var/lib/mailcerts'),
    /**
     * Mode of `privkey.pem` and `privkey-fullchain.pem`. Modes that let every user read the key are refused.
     * @group files
     * @default 0600
     * @values an octal mode without bits for others, such as `0600` or `0640`
     */
    KEY_FILE_MODE: z._default(fileMode, 0o600),
    /**
     * Numeric uid for the key files, as the mail containers see it (4294967295 is -1, which chown takes as "leave
     * unchanged").
     * @group files
     * @default unchanged
     */
    KEY_FILE_OWNER: z.optional(numericId('user')),
    /**
     * Numeric gid for the key files, as the mail containers see it, e.g. `KEY_FILE_GROUP=101` with
     * `KEY_FILE_MODE=0640`.
     * @group files
     * @default unchanged
     */
    KEY_FILE_GROUP: z.optional(numericId('group')),
    /**
     * Time between renewal checks (±5% random jitter), e.g. `90m`, `1d`.
     * @group schedule
     * @default 12h
     */
    RENEW_CHECK_INTERVAL: z._default(duration(10_000, 7 * 86_400_000, '12h'), 43_200_000),
    /**
     * `false` publishes without reloading any container.
     * @group deploy
     * @default true
     */
    DOCKER_RELOAD: z._default(bool, true),
    /**
     * `volume`: publish into `CERTS_DIR`, a volume the mail containers mount, and reload them through the Docker API.
     * `swarm`: also ship each version as Swarm secrets and configs and update the labelled services of the stack (see
     * [Swarm](swarm.md)); `DOCKER_SCOPE` is then a stack name.
     * @group deploy
     * @default volume
     */
    DEPLOY_MODE: z._default(
      z.enum(parts.modes.map((m) => m.name) as [string, ...string[]], {
        error: () => `use ${parts.modes.map((m) => `${m.name} (${m.summary})`).join(' or ')}`,
      }),
      parts.modes[0]!.name,
    ),
    // Each deploy mode's own variables (deploy/modes/<name>/index.ts).
    ...(Object.assign({}, ...parts.modes.map((m) => m.env ?? {})) as Record<string, z.ZodMiniType>),
    /**
     * The compose project whose labelled containers mailcerts reloads and verifies. Found from mailcerts' own
     * container when it runs in one; **required** when it does not. `*` trusts every labelled container on the host,
     * with a warning.
     * @group deploy
     * @default mailcerts' own compose project
     * @values a compose project or stack name, or `*`
     */
    DOCKER_SCOPE: z.optional(
      z
        .string()
        .check(
          z.refine(
            (s) => s === '*' || COMPOSE_PROJECT.test(s),
            'use the compose project name of the mail stack (docker compose ls), or * for every labelled container on the host',
          ),
        ),
    ),
    /**
     * Hosts a `mailcerts.verify` label may name besides the container's own addresses, e.g. `mail.example.com`; `*`
     * for any.
     * @group deploy
     * @default none
     * @values addresses or host names, comma separated, or `*`
     */
    VERIFY_HOSTS: z.optional(
      csvOf((h) =>
        h !== '*' && isIP(h) === 0 && dnsNameProblem(h.toLowerCase()) && !/^[a-z0-9][a-z0-9_.-]*$/i.test(h)
          ? `"${h}" is neither an address nor a host name`
          : undefined,
      ),
    ),
    /**
     * How much mailcerts logs.
     * @group report
     * @default info
     */
    LOG_LEVEL: z._default(z.enum(LOG_LEVELS, { error: () => `use one of ${LOG_LEVELS.join(', ')}` }), 'info'),
    /**
     * Who gets alert mails. Needs `ALERT_SMTP`.
     * @group alerts
     * @default none
     * @values mail addresses, comma separated
     */
    ALERT_EMAIL: z.optional(
      z.pipe(
        csv,
        z.array(z.email({ error: () => 'use mail addresses such as postmaster@example.com, comma separated' })),
      ),
    ),
    /**
     * `smtp://[user:password@]host[:port]` (STARTTLS required, port 587 by default) or `smtps://…:465`;
     * `?servername=NAME` when the URL names the server by address. Better as `ALERT_SMTP_FILE`: it is a secret, never
     * logged.
     * @group alerts
     * @default (required with `ALERT_EMAIL`)
     * @values an `smtp://` or `smtps://` URL
     */
    ALERT_SMTP: z.optional(
      stringTo((s, ctx) => {
        let url: URL | undefined;
        try {
          url = new URL(s);
        } catch {
          /* reported below */
        }
        if (!url || !['smtp:', 'smtps:'].includes(url.protocol) || !url.hostname) {
          ctx.issues.push({
            code: 'custom',
            input: '(url)',
            message:
              'use smtp://[user:password@]host[:port] (STARTTLS, port 587 by default) or smtps://…:465, such as smtp://postfix:587',
          });
          return z.NEVER;
        }
        return url.href;
      }),
    ),
    /**
     * The sender of alert mails.
     * @group alerts
     * @default `mailcerts@<first name>`
     * @values a mail address
     */
    ALERT_FROM: z.optional(z.email({ error: () => 'use a mail address such as mailcerts@example.com' })),
    /**
     * A URL to POST alerts to; a secret, never logged (tokens often live in it). No `user:pass@` in it.
     * @group alerts
     * @default none
     * @values `https://`, or plain `http://` only to a loopback address (`127.0.0.0/8`, `[::1]`, `localhost`)
     */
    ALERT_WEBHOOK: z.optional(
      stringTo((s, ctx) => {
        let url: URL | undefined;
        try {
          url = new URL(s);
        } catch {
          /* reported below */
        }
        const problem = webhookProblem(url);
        if (problem) {
          ctx.issues.push({ code: 'custom', input: '(url)', message: problem });
          return z.NEVER;
        }
        return url!.href;
      }),
    ),
    /**
     * `json` (`{event, problem, subject, text}`), `ntfy` (the text, with `Title`, `Tags`, `Priority` headers),
     * `slack` (`{text}`, for Slack-compatible incoming webhooks).
     * @group alerts
     * @default json
     */
    ALERT_WEBHOOK_FORMAT: z._default(
      z.enum(['json', 'ntfy', 'slack'], { error: () => 'use json, ntfy or slack' }),
      'json',
    ),
    /**
     * A renewal failing for longer than this is alerted.
     * @group alerts
     * @default 24h
     */
    ALERT_AFTER: z._default(duration(1_000, 30 * 86_400_000, '24h'), 86_400_000),
    /**
     * A served certificate expiring sooner than this is alerted.
     * @group alerts
     * @default 14d
     */
    ALERT_EXPIRY: z._default(duration(3_600_000, 90 * 86_400_000, '14d'), 14 * 86_400_000),
    /**
     * `json`: one JSON object per line, for a log collector. `text`: one short line per event for people (`docker
     * compose logs`): time, level, certificate, step, message, then the other fields as `key=value`, e.g. `2026-12-03
     * 10:31:02Z INFO  mail validate: new certificate checked  serial=04AB… notAfter=2027-03-03T09:31:01.000Z`. Errors
     * read the same in both, and secrets are redacted in both.
     * @group report
     * @default `text` on a terminal, else `json`
     */
    LOG_FORMAT: z.optional(
      z.enum(['json', 'text'], {
        error: () => 'use json (for a log collector) or text (one short line per event, for people)',
      }),
    ),
    /**
     * Path of a YAML or JSON file that lists several certificates (see [the config
     * file](#the-mailcerts_config-file)).
     * @group certificates
     * @default none
     * @values an absolute path to a `.yml`, `.yaml` or `.json` file
     */
    MAILCERTS_CONFIG: z.optional(absolutePath('use an absolute path to a .yml, .yaml or .json file')),
    /**
     * Where the daemon serves `/healthz`, `/status` and `/metrics`, unauthenticated; `0.0.0.0:9090` exposes it (for
     * Prometheus); `off` disables it.
     * @group report
     * @default `127.0.0.1:9090`, in the image too
     * @values `host:port`, or `off`
     */
    STATUS_ADDRESS: z.optional(listenAddress),
    // Each certificate source's own variables (obtain/sources/<name>/index.ts).
    ...(Object.assign({}, ...parts.sources.map((s) => s.env)) as Record<string, z.ZodMiniType>),
    // Written into Postfix's map and Dovecot's config: only characters neither of them treats specially.
    /**
     * Where the mail containers mount `CERTS_DIR`: the paths written into the `sni/` files (see [SNI](sni.md)).
     * @group files
     * @default /etc/ssl/mail
     * @values an absolute path of letters, digits, `.`, `_`, `-` and `/`
     */
    SNI_CERTS_PATH: z._default(
      matching(
        /^\/[A-Za-z0-9._/-]*$/,
        'use the absolute path at which the mail containers mount the certificates volume, such as /etc/ssl/mail (letters, digits, . _ - and /)',
      ),
      '/etc/ssl/mail',
    ),
  });

export type Env = z.output<ReturnType<typeof envSchema>>;

/** Variables whose values must never be logged. Filled as secret-bearing settings arrive. */
export const SECRET_KEYS: readonly string[] = [
  'ACME_EAB_HMAC_KEY',
  'ALERT_SMTP',
  'ALERT_WEBHOOK',
  ...DNS_PROVIDER_DEFINITIONS.flatMap((d) => d.secrets),
];

/** The optional config file: a list of certificates; everything else comes from the environment. */
export const fileSchema = (parts: ConfigParts) =>
  z.strictObject({
    certificates: z
      .array(
        z.strictObject({
          /**
           * The certificate's name: its directory in `CERTS_DIR` and in `STATE_DIR`, and what `status` shows. With
           * several certificates, it may not be `sni` nor the name of a published file (`privkey.pem` …).
           * @default the first domain, `*.` spelt `wildcard.`
           * @values 1 to 64 lower-case letters, digits, `.`, `_` or `-`, starting with a letter or digit
           */
          name: z.optional(certName),
          /**
           * The names of this certificate, as a list. Internationalized names may be written as they are; they are
           * converted to their A-label (`xn--`) form.
           * @default (required)
           * @values DNS names, as a YAML or JSON list
           */
          domains: domainList,
          /**
           * One key type, or a list of one ECDSA and one RSA (`[ec-256, rsa-2048]`) for a dual certificate.
           * @default `ACME_KEY_TYPE`
           * @values as `ACME_KEY_TYPE`, or a YAML or JSON list
           */
          keyType: z.optional(keyTypes),
          /**
           * `http-01` or `dns-01`.
           * @default `ACME_CHALLENGE`
           */
          challenge: z.optional(challenge),
          /**
           * The DNS provider of this certificate's DNS-01 challenges.
           * @default `ACME_DNS_PROVIDER`
           */
          dnsProvider: z.optional(dnsProvider),
          /**
           * `acme`: obtained from the CA. `custom`: supplied in `CUSTOM_CERTS_DIR/<name>/`. `traefik`: taken from
           * Traefik's `acme.json`.
           * @default `custom` when `CUSTOM_CERTS_DIR` is set, else `traefik` when `TRAEFIK_ACME_JSON` is, else `acme`
           */
          source: z.optional(
            z.enum(parts.sources.map((s) => s.name) as [string, ...string[]], {
              error: () =>
                `use ${parts.sources
                  .map((s) => s.name)
                  .join(', ')
                  .replace(/, ([^,]*)$/, ' or $1')}`,
            }),
          ),
          /**
           * MX host names (each one of this certificate's names) whose TLSA records mailcerts keeps in step with the
           * key (DANE).
           * @default none
           * @values DNS names, as a YAML or JSON list
           */
          dane: z.optional(domainList),
        }),
      )
      .check(z.minLength(1, 'list at least one certificate')),
  });
export type ConfigFile = z.output<ReturnType<typeof fileSchema>>;
