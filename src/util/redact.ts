/**
 * One redaction for everything that leaves the process: log lines, state files and the status
 * output. Secret values (API tokens, EAB keys) are registered once, when the configuration is
 * loaded; any text that carries one, an error echoed by a provider for example, is scrubbed.
 */
const secrets = new Set<string>();

/** Values shorter than this are not scrubbed: they would match ordinary text. */
const MIN_SECRET_LENGTH = 8;

export const REDACTED = '[redacted]';

export function registerSecrets(values: (string | undefined)[]): void {
  for (const v of values) if (v && v.length >= MIN_SECRET_LENGTH) secrets.add(v);
}

export function redactWith(values: Iterable<string>, text: string): string {
  let out = text;
  for (const s of values) if (out.includes(s)) out = out.split(s).join(REDACTED);
  return out;
}

/** The text with every registered secret replaced by [redacted]. */
export function redact(text: string): string {
  return secrets.size === 0 ? text : redactWith(secrets, text);
}
