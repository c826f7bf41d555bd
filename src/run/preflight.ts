import type { Config } from '../config/schema.js';
import { checkPublishable } from '../publish/publisher.js';
import { errorMessage, UserError } from '../util/errors.js';

const uid = () => process.getuid?.() ?? -1;

/** Turns a failed write into CERTS_DIR into what the admin has to change. */
export function explainPublishError(err: unknown, config: Config): string {
  if (err instanceof UserError) return err.message;
  const e = err as NodeJS.ErrnoException;
  const { owner, group } = config.files;
  const me = `mailcerts (uid ${uid()})`;
  if (e.code === 'EPERM' && e.syscall === 'chown') {
    if (owner !== undefined && owner !== uid()) {
      return `${me} cannot give the key files to user ${owner} (KEY_FILE_OWNER): only root may; run mailcerts as root, or unset KEY_FILE_OWNER and use KEY_FILE_GROUP with KEY_FILE_MODE=0640`;
    }
    return `${me} cannot give the key files to group ${group} (KEY_FILE_GROUP): a process that is not root can only use groups it belongs to; add group_add: ["${group}"] to the mailcerts service, or unset KEY_FILE_GROUP`;
  }
  if (e.code === 'EACCES' || e.code === 'EPERM') {
    return `${me} cannot write into CERTS_DIR ${config.certsDir} (${e.code} on ${e.syscall ?? 'write'}); make the volume writable by uid ${uid()} (the image runs as uid 10001), e.g. chown it to that uid`;
  }
  if (e.code === 'EROFS')
    return `CERTS_DIR ${config.certsDir} is on a read-only file system; mount it read-write for mailcerts (read-only for the mail containers)`;
  if (e.code === 'ENOSPC') return `no space left in CERTS_DIR ${config.certsDir}; free some space`;
  return `cannot publish into CERTS_DIR ${config.certsDir}: ${errorMessage(err)}`;
}

/** Proves before anything is ordered that a publish can succeed; the problem, or undefined. */
export async function certsDirProblem(config: Config): Promise<string | undefined> {
  try {
    await checkPublishable(config);
    return undefined;
  } catch (err) {
    return explainPublishError(err, config);
  }
}
