// zod/mini: the same checks as zod's classic API at a fraction of its memory (it loads only what is used).
import * as z from 'zod/mini';
import { formatDuration, parseDuration } from '../util/duration.js';
import { settingBounds } from './setting-doc.js';

/**
 * Field types of the environment, shared by the central schema (schema.ts) and by the parts that
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
