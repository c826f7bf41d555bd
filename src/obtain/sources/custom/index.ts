import { join } from 'node:path';
import { absolutePath } from '../../../config/fields.js';
import * as z from 'zod/mini';
import type { CertificateSource } from '../source.js';

declare module '../../../config/types.js' {
  interface CertificateSpec {
    /** source: custom: where its fullchain.pem and privkey.pem are dropped. */
    customDir?: string;
  }
}

/** The files whose change starts a pass (the dual pairs are read with them). */
const WATCHED = ['fullchain.pem', 'privkey.pem'];

/**
 * source: custom: the user drops fullchain.pem and privkey.pem (and for a dual certificate a pair
 * of the other algorithm) into CUSTOM_CERTS_DIR, or CUSTOM_CERTS_DIR/<name>/ with several
 * certificates; nothing renews them.
 */
export const custom: CertificateSource = {
  name: 'custom',
  summary: 'supplied in `CUSTOM_CERTS_DIR/<name>/`',
  env: {
    /**
     * Certificates you supply: drop `fullchain.pem` and `privkey.pem` here (a sub-directory per certificate for
     * several).
     * @group supplied
     * @default none
     * @values an absolute path
     */
    CUSTOM_CERTS_DIR: z.optional(
      absolutePath('use an absolute path: the folder where you drop fullchain.pem and privkey.pem'),
    ),
  },
  chosenBy: 'CUSTOM_CERTS_DIR',
  settings(env, cert) {
    const dir = env.CUSTOM_CERTS_DIR as string | undefined;
    return { customDir: dir && (cert.several ? join(dir, cert.name) : dir) };
  },
  check(_spec, at, problems) {
    if (!at.env.CUSTOM_CERTS_DIR)
      problems.push(`${at.entry}.source: custom needs CUSTOM_CERTS_DIR, the folder where you drop the files`);
  },
  describe: (spec) => `supplied in ${spec.customDir}`,
  supplied: {
    read: async (spec, ctx) => (await import('./read.js')).readSuppliedFiles(spec, ctx),
    renewal: (_spec, current) =>
      `nothing renews it${current ? `, replace it before ${current.notAfter.toISOString().slice(0, 10)}` : ''}`,
    expiring: (spec) => `nothing renews it: replace the files in ${spec.customDir}`,
    rejected: 'these files were rolled back; replace them',
    takenAs: 'supplied (CUSTOM_CERTS_DIR)',
    published: 'published the supplied certificate',
    origin: (spec) => spec.customDir,
    watch: (spec) => (spec.customDir ? { dir: spec.customDir, files: WATCHED } : undefined),
  },
};
