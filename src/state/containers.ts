import { join } from 'node:path';
import { readJson, writeJson } from './files.js';

/** The last deploy of one container, as `status`, /status and /metrics show it. */
export interface ContainerRecord {
  at: string;
  reloaded: boolean;
  /** true: it serves the published certificate; false: it does not; null: not verified. */
  serves: boolean | null;
  error?: string;
}

const path = (stateDir: string) => join(stateDir, 'containers.json');

export async function readContainers(stateDir: string): Promise<Record<string, ContainerRecord>> {
  return (await readJson<Record<string, ContainerRecord>>(path(stateDir))) ?? {};
}

export async function recordContainers(stateDir: string, results: { container: string; ok: boolean; error?: string; verified?: boolean; reloaded?: boolean }[]): Promise<void> {
  if (results.length === 0) return;
  const all = await readContainers(stateDir);
  const at = new Date().toISOString();
  for (const r of results) {
    const reloaded = r.reloaded === true;
    all[r.container] = { at, reloaded, serves: !reloaded ? null : r.ok ? (r.verified ? true : null) : false, error: r.error };
  }
  await writeJson(path(stateDir), all);
}
