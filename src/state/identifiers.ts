import { join } from 'node:path';
import { readJson, writeJson } from './files.js';

/** Failed validations per name: Let's Encrypt allows 5 per name and hour; mailcerts stops at 3. */
export const MAX_FAILED_VALIDATIONS_PER_HOUR = 3;
const HOUR = 3_600_000;

type Failures = Record<string, string[]>;
const path = (stateDir: string) => join(stateDir, 'identifiers.json');

export async function recordFailedValidation(stateDir: string, name: string, now = new Date()): Promise<void> {
  const all = (await readJson<Failures>(path(stateDir))) ?? {};
  const recent = (all[name] ?? []).filter((t) => now.getTime() - new Date(t).getTime() < 24 * HOUR);
  all[name] = [...recent, now.toISOString()];
  await writeJson(path(stateDir), all);
}

/** When the names may be validated again, or undefined when none has used up its hourly allowance. */
export async function validationPause(stateDir: string, names: string[], now = new Date()): Promise<{ name: string; until: Date; count: number } | undefined> {
  const all = (await readJson<Failures>(path(stateDir))) ?? {};
  for (const name of names.map((n) => n.replace(/^\*\./, ''))) {
    const lastHour = (all[name] ?? []).map((t) => new Date(t)).filter((t) => now.getTime() - t.getTime() < HOUR).sort((a, b) => a.getTime() - b.getTime());
    if (lastHour.length >= MAX_FAILED_VALIDATIONS_PER_HOUR) {
      return { name, count: lastHour.length, until: new Date(lastHour[lastHour.length - MAX_FAILED_VALIDATIONS_PER_HOUR]!.getTime() + HOUR) };
    }
  }
  return undefined;
}
