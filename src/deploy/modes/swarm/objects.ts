import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { ShippedFile } from '../../../publish/shipped.js';
import type { ServedCert } from '../../deployer.js';
import { CERTIFICATES_LABEL } from '../../verify.js';

/**
 * The Swarm objects of published certificates, and which of them a service mounts where. Pure:
 * the API calls live in deployer.ts. Objects are immutable and named by their version, so a new
 * certificate is a new name, and the name of an object says what it holds:
 *   mailcerts.<certificate>.<algorithm>.<fingerprint prefix>.<file>   (key files: secrets; the rest: configs)
 *   mailcerts.sni.<content prefix>.<file>                               (the SNI map files: configs)
 */
export const SECRET_TARGET_LABEL = 'mailcerts.secret-target';
export const DEFAULT_SECRET_TARGET = '/run/secrets/mail';
/** Every object mailcerts makes carries it, with the scope (stack) it was made for. */
export const MANAGED_LABEL = 'mailcerts.managed-by';
export const CERT_LABEL = 'mailcerts.certificate';
const GROUP_LABEL = 'mailcerts.group';
const SHA_LABEL = 'mailcerts.sha256';
const VERSION_LABEL = 'mailcerts.version';

/** Swarm's limit on object names. */
const MAX_NAME = 64;

/** The short names of the layout's files in object names: the whole file name would not fit 64 characters. */
const SHORT: Record<string, string> = {
  'fullchain.pem': 'fullchain',
  'cert.pem': 'cert',
  'chain.pem': 'chain',
  'privkey.pem': 'key',
  'privkey-fullchain.pem': 'keychain',
};

export interface SwarmObject {
  kind: 'secret' | 'config';
  name: string;
  /** Objects of one group replace each other: a certificate's variant, or the SNI files. */
  group: string;
  data: string;
  labels: Record<string, string>;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** A name part that fits: long certificate names are cut and made unique again with a hash. */
function fitName(part: string, room: number): string {
  return part.length <= room ? part : `${part.slice(0, room - 7)}-${sha256(part).slice(0, 6)}`;
}

/** The object that carries one shipped file. */
export function objectFor(f: ShippedFile, scope: string): SwarmObject {
  const sha = sha256(f.data);
  const labels: Record<string, string> = { [MANAGED_LABEL]: scope, [SHA_LABEL]: sha };
  if (!f.variant) {
    const name = `mailcerts.sni.${sha.slice(0, 12)}.${f.file}`;
    const group = `sni.${f.file}`;
    return {
      kind: 'config',
      name,
      group,
      data: f.data,
      labels: { ...labels, [GROUP_LABEL]: group, [VERSION_LABEL]: sha.slice(0, 12) },
    };
  }
  const v = f.variant;
  const fp = v.fingerprint256.replace(/:/g, '').toLowerCase().slice(0, 12);
  const tail = `.${v.algorithm}.${fp}.${SHORT[f.file] ?? f.file}`;
  const name = `mailcerts.${fitName(v.cert, MAX_NAME - 'mailcerts.'.length - tail.length)}${tail}`;
  const group = `${v.cert}.${v.algorithm}`;
  return {
    kind: f.secret ? 'secret' : 'config',
    name,
    group,
    data: f.data,
    labels: {
      ...labels,
      [GROUP_LABEL]: group,
      [VERSION_LABEL]: fp,
      [CERT_LABEL]: v.cert,
      'mailcerts.serial': v.serial,
      'mailcerts.not-after': v.notAfter.toISOString(),
    },
  };
}

/** Whether an existing object of that name is the one mailcerts would make: its own, with the same content. */
export function sameObject(existing: { labels: Record<string, string> }, wanted: SwarmObject): boolean {
  return (
    existing.labels[MANAGED_LABEL] === wanted.labels[MANAGED_LABEL] &&
    existing.labels[SHA_LABEL] === wanted.labels[SHA_LABEL]
  );
}

export const groupOf = (labels: Record<string, string>) => labels[GROUP_LABEL];
export const versionOf = (labels: Record<string, string>) => labels[VERSION_LABEL];

/** One file as a service mounts it. */
export interface Mount {
  kind: 'secret' | 'config';
  object: string;
  /** The object's id (references name both). */
  id: string;
  target: string;
  mode: number;
  uid: string;
  gid: string;
}

/** Parses mailcerts.secret-target: an absolute directory, no "..", no room for another meaning. */
export function parseSecretTarget(value: string | undefined): string | { error: string } {
  if (value === undefined || value.trim() === '') return DEFAULT_SECRET_TARGET;
  const v = value.trim();
  if (!/^\/[A-Za-z0-9._/-]*$/.test(v) || v.split('/').includes('..')) {
    return {
      error: `${SECRET_TARGET_LABEL} "${v.slice(0, 80)}" is not an absolute directory; write it like /run/secrets/mail or /etc/ssl/mail`,
    };
  }
  const dir = posix.normalize(v).replace(/\/+$/, '');
  if (dir === '' || dir === '/')
    return { error: `${SECRET_TARGET_LABEL} must name a directory below /, such as /run/secrets/mail` };
  return dir;
}

/**
 * The files a service gets: those of the certificates it serves (mailcerts.certificates, `*` for
 * all, or the first one, as for containers), at the paths they have under CERTS_DIR, below its
 * target directory; and the SNI files when it serves every certificate (they name them all).
 */
export function mountsFor(
  labels: Record<string, string>,
  certs: ServedCert[],
  sni: ShippedFile[],
  opts: { target: string; keyMode: number; owner?: number; group?: number },
): { file: ShippedFile; mount: Omit<Mount, 'object' | 'id'> }[] {
  const listed = labels[CERTIFICATES_LABEL]
    ?.split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  const all = listed?.includes('*') || certs.length === 1;
  const chosen = listed?.includes('*')
    ? certs
    : listed
      ? certs.filter((c) => listed.includes(c.name))
      : certs.slice(0, 1);
  const files = [...chosen.flatMap((c) => c.files ?? []), ...(all ? sni : [])];
  return files.map((file) => ({
    file,
    mount: {
      kind: file.secret ? 'secret' : 'config',
      target: `${opts.target}/${file.path}`,
      mode: file.secret ? opts.keyMode : 0o444,
      uid: String(file.secret ? (opts.owner ?? 0) : 0),
      gid: String(file.secret ? (opts.group ?? 0) : 0),
    },
  }));
}
