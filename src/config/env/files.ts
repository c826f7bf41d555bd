import * as z from 'zod/mini';
import { absolutePath, matching, stringTo, wholeNumber } from '../fields.js';

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

/** A uid or gid as chown takes it: 4294967295 is (uid_t)-1, which chown reads as "leave it unchanged". */
const numericId = (what: string) => {
  const digits = `use the numeric ${what} id as the mail containers see it, such as 0 or 101`;
  return wholeNumber(0, 4294967294, {
    digits,
    min: digits,
    max: `use a numeric ${what} id from 0 to 4294967294 (4294967295 is -1, which chown takes as "leave unchanged")`,
  });
};

/**
 * The central variables of the `files` group: where the certificates are published, and who may read the keys.
 * Built when the configuration is read (envSchema in ../schema.ts), not kept.
 */
export const filesEnv = () => ({
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
