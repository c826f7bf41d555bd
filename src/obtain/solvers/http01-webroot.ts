import { constants } from 'node:fs';
import { lstat, mkdir, open, realpath, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import { UserError } from '../../util/errors.js';
import { CHALLENGE_PREFIX, type ChallengeItem, type ChallengeSolver, TOKEN_PATTERN } from './types.js';

/**
 * Writes token files under HTTP01_WEBROOT/.well-known/acme-challenge/ for a web server that already
 * owns port 80. The webroot may be shared with other containers, so every directory on the way must
 * be a real directory (a planted symlink would redirect the writes anywhere), and token files are
 * opened without following links.
 */
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

  /** Creates .well-known/acme-challenge as real directories, refusing links. */
  private async ensureRealDirs(): Promise<void> {
    const root = await lstat(this.webroot).catch(() => undefined);
    if (!root?.isDirectory())
      throw new UserError(
        `HTTP01_WEBROOT "${this.webroot}" is not a directory; mount the web server's document root there`,
      );
    let path = this.webroot;
    for (const part of CHALLENGE_PREFIX.split('/').filter(Boolean)) {
      path = join(path, part);
      const st = await lstat(path).catch(() => undefined);
      if (!st)
        await mkdir(path, { mode: 0o755 }).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
      const now = await lstat(path);
      if (!now.isDirectory()) {
        throw new UserError(
          `${path} is ${now.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; mailcerts writes challenge tokens only into real directories of HTTP01_WEBROOT: remove it`,
        );
      }
    }
  }

  async begin(): Promise<void> {
    await this.ensureRealDirs();
  }

  async prepare(items: ChallengeItem[]): Promise<void> {
    await this.ensureRealDirs();
    for (const { token, keyAuthorization, domain } of items) {
      if (!TOKEN_PATTERN.test(token)) throw new Error('the CA sent a malformed challenge token');
      const file = join(this.dir, token);
      const fh = await open(
        file,
        constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
        0o644,
      );
      try {
        await fh.writeFile(keyAuthorization);
      } finally {
        await fh.close();
      }
      // A directory swapped for a link between the check and the open is caught here, and undone.
      const landed = await realpath(file).catch(() => '');
      if (landed !== join(await realpath(this.webroot), CHALLENGE_PREFIX, token)) {
        if (landed) await rm(landed, { force: true });
        throw new UserError(
          `the challenge file for ${domain} did not land in HTTP01_WEBROOT (it went to ${landed || 'nowhere'}); a directory on the way was replaced by a link`,
        );
      }
      this.log.info({ step: 'http-01', domain, file }, 'wrote challenge file');
    }
  }

  async cleanup(items: ChallengeItem[]): Promise<void> {
    for (const { token } of items)
      if (TOKEN_PATTERN.test(token)) await rm(join(this.dir, token), { force: true }).catch(() => undefined);
  }

  async end(): Promise<void> {}
}
