import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { PassResult } from '../run/engine.js';
import { certsDirProblem } from '../run/preflight.js';
import { redact } from '../util/redact.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, config: 78 } as const;

/** What a command is given: the loaded configuration, its logger, and its parsed arguments. */
export interface CommandContext {
  config: Config;
  log: Logger;
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** What people read on stdout: secrets never reach it either. */
export const out = (text: string) => process.stdout.write(`${redact(text)}\n`);

/** A usage error of one command, on stderr. */
export function usageError(command: string, message: string): number {
  process.stderr.write(`mailcerts ${command}: ${message}\n`);
  return EXIT.usage;
}

/** A one-shot command ends after its alert round (which runs beside a daemon's next pass). */
export async function summarize(result: PassResult, log: Logger): Promise<number> {
  await result.alerted;
  for (const c of result.certs) {
    log.info(
      {
        step: 'report',
        cert: c.name,
        ...(c.keyType ? { keyType: c.keyType } : {}),
        ok: c.ok,
        decision: c.decision,
        issued: c.issued,
        published: c.published,
        error: c.error,
      },
      c.ok ? 'certificate ok' : 'certificate failed',
    );
  }
  return result.ok ? EXIT.ok : EXIT.failed;
}

/** Before anything is ordered: a publish that cannot succeed is a configuration problem (exit 78). */
export async function refuseUnpublishable(config: Config): Promise<number | undefined> {
  const problem = await certsDirProblem(config);
  if (!problem) return undefined;
  process.stderr.write(`mailcerts: ${redact(problem)}\nNothing was ordered or published.\n`);
  return EXIT.config;
}
