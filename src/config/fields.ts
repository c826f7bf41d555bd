import { isIP } from 'node:net';
// zod/mini: the same checks as zod's classic API at a fraction of its memory (it loads only what is used).
import * as z from 'zod/mini';
import { formatDuration, parseDuration } from '../util/duration.js';
import { splitHostPort } from '../util/host-port.js';
import { settingBounds } from './setting-doc.js';

/**
 * Field types of the environment, shared by the central variables (env/<group>.ts) and by the parts that
 * bring variables of their own (DNS providers, certificate sources, deploy modes). It imports
 * nothing of mailcerts but util/, so that any part's definition may use it.
 */

/** A string matching `pattern`; `message` says what to write instead. */
export const matching = (pattern: RegExp, message: string) => z.string().check(z.regex(pattern, message));

/** A string turned into something else by `fn`, which reports its own issues. */
export const stringTo = <T>(fn: (s: string, ctx: z.core.ParsePayload) => T) => z.pipe(z.string(), z.transform(fn));

/** A duration such as 30s or 12h, in milliseconds, from min to max; `example` shows how to write one. */
export const duration = (min: number, max: number, example: string) =>
  stringTo((s, ctx) => {
    const ms = parseDuration(s);
    if (ms === undefined || ms < min || ms > max) {
      const shown = s.length > 40 ? `${s.slice(0, 40)}…` : s;
      ctx.issues.push({
        code: 'custom',
        input: s,
        message: `"${shown}" is not a duration between ${formatDuration(min)} and ${formatDuration(max)}; write it like ${example}`,
      });
      return z.NEVER;
    }
    return ms;
  }).register(settingBounds, { values: `${formatDuration(min)} to ${formatDuration(max)}` });

export const bool = z.stringbool({ error: () => 'use true or false' });

export const absolutePath = (message: string) => z.string().check(z.startsWith('/', message));

/** A comma list, trimmed, empty items dropped. */
export const csv = z.pipe(
  z.string(),
  z.transform((s: string) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  ),
);

/** A comma list whose every item is checked: `problem` says what is wrong with one, or undefined. */
export const csvOf = (problem: (item: string) => string | undefined) =>
  csv.check((ctx) => {
    for (const item of ctx.value) {
      const message = problem(item);
      if (message) ctx.issues.push({ code: 'custom', input: item, message, continue: true });
    }
  });

/** A whole number from min to max, written in decimal digits. */
export const wholeNumber = (min: number, max: number, messages: { digits: string; min: string; max: string }) =>
  z
    .pipe(
      z.pipe(matching(/^\d+$/, messages.digits), z.transform(Number)),
      z.int().check(z.gte(min, messages.min), z.lte(max, messages.max)),
    )
    .register(settingBounds, { values: `${min} to ${max}` });

export const PORT_MESSAGE = 'use a port number between 1 and 65535';
export const port = wholeNumber(1, 65535, { digits: PORT_MESSAGE, min: PORT_MESSAGE, max: PORT_MESSAGE });

/** "1.1.1.1", "1.1.1.1:53", "[2606:4700::1111]:53" or "::1". */
export function resolverProblem(s: string): string | undefined {
  const hp = splitHostPort(s, 53);
  if (!hp) return `"${s}" has a bad port`;
  if (isIP(hp.host) === 0)
    return `"${s}" is not an IP address (with an optional :port); name servers are given by address`;
  return undefined;
}
