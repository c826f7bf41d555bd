import { createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as acme from 'acme-client';
import * as z from 'zod/mini';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { generatePrivateKey } from '../pki/keys.js';
import { readStateFile, replaceFile, writeJson } from '../state/files.js';
import { UserError } from '../util/errors.js';
import { acmeStep, rawApi, reuseNonces, tolerateBadNonces } from './acme-http.js';

const AccountRecordSchema = z.object({
  url: z.string(),
  directory: z.string(),
  email: z.optional(z.string()),
  createdAt: z.string(),
});
type AccountRecord = z.infer<typeof AccountRecordSchema>;

/** One account per CA directory: STATE_DIR/accounts/<directory host>/ holds the key (0600) and its URL. */
function accountDir(config: Config): string {
  const host = new URL(config.acme.directoryUrl).host.replace(/[^a-zA-Z0-9.-]/g, '_');
  return join(config.stateDir, 'accounts', host);
}

/**
 * The account key is the account: it is never replaced behind the admin's back. A damaged one is
 * reported with what to do; only a missing one is created.
 */
async function loadOrCreateKey(path: string, log: Logger): Promise<Buffer> {
  let pem: Buffer | undefined;
  try {
    pem = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new UserError(
        `cannot read the account key ${path}: ${(err as Error).message}; check the permissions of STATE_DIR`,
      );
  }
  if (pem) {
    try {
      createPrivateKey(pem);
      return pem;
    } catch {
      throw new UserError(
        `the ACME account key ${path} is damaged (${pem.length} bytes, not a PEM private key); restore it from a backup of STATE_DIR, or move it away so that mailcerts registers a new account`,
      );
    }
  }
  const fresh = await generatePrivateKey('ec-256');
  await replaceFile(path, fresh, 0o600);
  log.info({ step: 'account' }, 'created a new account key');
  return Buffer.from(fresh);
}

/**
 * An ACME client for the configured CA with the account registered. The stored key is reused
 * across restarts; newAccount with a known key returns the existing account (RFC 8555 7.3.1).
 */
export async function openAccount(
  config: Config,
  log: Logger,
): Promise<{ client: acme.Client; accountUrl: string; reused: boolean }> {
  const dir = accountDir(config);
  const key = await loadOrCreateKey(join(dir, 'account.key'), log);
  const recordPath = join(dir, 'account.json');
  const stored = await readStateFile(recordPath, AccountRecordSchema, log);
  const client = new acme.Client({
    directoryUrl: config.acme.directoryUrl,
    accountKey: key,
    ...(config.acme.eab ? { externalAccountBinding: config.acme.eab } : {}),
  });
  tolerateBadNonces(client);
  reuseNonces(client);
  const contact = config.acme.email ? [`mailto:${config.acme.email}`] : [];
  // newAccount with a known key returns the existing account (HTTP 200) and changes nothing.
  const resp = await acmeStep('account', {}, () =>
    rawApi(client).createAccount({ termsOfServiceAgreed: true, contact }),
  );
  const accountUrl = client.getAccountUrl();
  const reused = stored?.url === accountUrl;
  if (resp.status === 200 && stored && stored.email !== config.acme.email) {
    await acmeStep('account', {}, () => client.updateAccount({ contact }));
    log.info({ step: 'account' }, 'account contact updated');
  }
  if (!reused || stored?.email !== config.acme.email) {
    await writeJson(recordPath, {
      url: accountUrl,
      directory: config.acme.directoryUrl,
      email: config.acme.email,
      createdAt: stored?.createdAt ?? new Date().toISOString(),
    } satisfies AccountRecord);
  }
  log.info({ step: 'account', account: accountUrl, reused }, reused ? 'account reused' : 'account registered');
  return { client, accountUrl, reused };
}
