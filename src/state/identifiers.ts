import { join } from 'node:path';
import pLimit from 'p-limit';
import * as z from 'zod/mini';
import type { Logger } from '../log.js';
import { readStateFile, writeJson } from './files.js';

/** Failed validations per name: Let's Encrypt allows 5 per name and hour; mailcerts stops at 3. */
export const MAX_FAILED_VALIDATIONS_PER_HOUR = 3;
const HOUR = 3_600_000;
/** A stamp further ahead than this was written by a clock that ran ahead: it is not counted. */
const FUTURE_TOLERANCE_MS = 5 * 60_000;

const FailuresSchema = z.record(z.string(), z.array(z.iso.datetime()));
type Failures = z.infer<typeof FailuresSchema>;
const path = (stateDir: string) => join(stateDir, 'identifiers.json');

/** Stamps in the last day, none from the future. */
function recent(stamps: string[], now: Date): Date[] {
  return stamps
    .map((t) => new Date(t))
    .filter((t) => now.getTime() - t.getTime() < 24 * HOUR && t.getTime() - now.getTime() <= FUTURE_TOLERANCE_MS);
}

/** Certificates are obtained concurrently: one read-modify-write of the file at a time. */
const oneWriter = pLimit(1);

export function recordFailedValidation(
  stateDir: string,
  names: string[],
  now = new Date(),
  log?: Logger,
): Promise<void> {
  return oneWriter(async () => {
    const all: Failures = (await readStateFile(path(stateDir), FailuresSchema, log)) ?? {};
    for (const name of new Set(names))
      all[name] = [...recent(all[name] ?? [], now).map((t) => t.toISOString()), now.toISOString()];
    await writeJson(path(stateDir), all);
  });
}

/** When the names may be validated again, or undefined when none has used up its hourly allowance. */
export async function validationPause(
  stateDir: string,
  names: string[],
  now = new Date(),
  log?: Logger,
): Promise<{ name: string; until: Date; count: number } | undefined> {
  const all: Failures = (await readStateFile(path(stateDir), FailuresSchema, log)) ?? {};
  for (const name of names.map((n) => n.replace(/^\*\./, ''))) {
    const lastHour = recent(all[name] ?? [], now)
      .filter((t) => now.getTime() - t.getTime() < HOUR)
      .sort((a, b) => a.getTime() - b.getTime());
    if (lastHour.length >= MAX_FAILED_VALIDATIONS_PER_HOUR) {
      const until = new Date(
        Math.min(lastHour[lastHour.length - MAX_FAILED_VALIDATIONS_PER_HOUR]!.getTime(), now.getTime()) + HOUR,
      );
      return { name, count: lastHour.length, until };
    }
  }
  return undefined;
}
