import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import { UserError } from '../../util/errors.js';
import { CHALLENGE_PREFIX, type ChallengeItem, type ChallengeSolver, TOKEN_PATTERN } from './types.js';

/** Writes token files under HTTP01_WEBROOT/.well-known/acme-challenge/ for a web server that already owns port 80. */
export class WebrootHttp01 implements ChallengeSolver {
  readonly type = 'http-01' as const;
  private readonly dir: string;
  private readonly webroot: string;
  private readonly log: Logger;

  constructor(opts: { webroot: string; log: Logger }) {
    this.webroot = opts.webroot;
    this.dir = join(opts.webroot, CHALLENGE_PREFIX);
    this.log = opts.log.child({ solver: 'http-01-webroot' });
  }

  async begin(): Promise<void> {
    const s = await stat(this.webroot).catch(() => undefined);
    if (!s?.isDirectory()) throw new UserError(`HTTP01_WEBROOT "${this.webroot}" is not a directory; mount the web server's document root there`);
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
  }

  async prepare(items: ChallengeItem[]): Promise<void> {
    for (const { token, keyAuthorization, domain } of items) {
      if (!TOKEN_PATTERN.test(token)) throw new Error('the CA sent a malformed challenge token');
      await writeFile(join(this.dir, token), keyAuthorization, { mode: 0o644 });
      this.log.info({ step: 'http-01', domain, file: join(this.dir, token) }, 'wrote challenge file');
    }
  }

  async cleanup(items: ChallengeItem[]): Promise<void> {
    for (const { token } of items) if (TOKEN_PATTERN.test(token)) await rm(join(this.dir, token), { force: true }).catch(() => undefined);
  }

  async end(): Promise<void> {}
}
