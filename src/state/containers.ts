import { join } from 'node:path';
import * as z from 'zod/mini';
import type { Logger } from '../log.js';
import { readStateFile, writeJson } from './files.js';

/** The last deploy of one container, as `status`, /status and /metrics show it. */
const ContainerRecordSchema = z.object({
  at: z.iso.datetime(),
  reloaded: z.boolean(),
  /** true: it serves the published certificate; false: it does not; null: not verified. */
  serves: z.nullable(z.boolean()),
  /** Per name probed by SNI ('(no SNI)' for the default): whether every endpoint served the right certificate. */
  names: z.optional(z.record(z.string(), z.boolean())),
  error: z.optional(z.string()),
  /** Reloaded, but what it serves could not be checked: why (no endpoint, mailcerts.verify=off …). */
  unverified: z.optional(z.string()),
});
export type ContainerRecord = z.infer<typeof ContainerRecordSchema>;
const ContainersSchema = z.record(z.string(), ContainerRecordSchema);

const path = (stateDir: string) => join(stateDir, 'containers.json');

export async function readContainers(
  stateDir: string,
  log?: Logger,
  opts: { readOnly?: boolean } = {},
): Promise<Record<string, ContainerRecord>> {
  return (await readStateFile(path(stateDir), ContainersSchema, log, opts)) ?? {};
}

export interface ContainerResult {
  container: string;
  ok: boolean;
  error?: string;
  verified?: boolean;
  reloaded?: boolean;
  names?: Record<string, boolean>;
  unverified?: string;
}

/**
 * Records one deploy. `complete`: the results cover every container in scope (discovery worked), so
 * records of containers that are gone are dropped; otherwise (Docker unreachable) they are kept.
 */
export async function recordContainers(
  stateDir: string,
  results: ContainerResult[],
  complete: boolean,
  log?: Logger,
): Promise<void> {
  if (results.length === 0 && !complete) return;
  const all = complete ? {} : await readContainers(stateDir, log);
  const at = new Date().toISOString();
  for (const r of results) {
    const reloaded = r.reloaded === true;
    // Not reloaded: unknown. Reloaded and checked: yes or no. Reloaded, not checked (no endpoints): unknown.
    const serves = !reloaded ? null : r.verified ? true : r.ok ? null : false;
    all[r.container] = { at, reloaded, serves, names: r.names, error: r.error, unverified: r.unverified };
  }
  await writeJson(path(stateDir), all);
}
