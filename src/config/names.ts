import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import * as z from 'zod/mini';

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Whether a name is all ASCII (else it is an internationalized name in its U-label form). */
const isAscii = (s: string) => [...s].every((c) => c.charCodeAt(0) < 0x80);

/**
 * A name as certificates and SNI carry it: lower case, internationalized names in their A-label
 * (xn--) form. Undefined when it cannot be converted.
 */
export function aLabelName(raw: string): string | undefined {
  const name = raw.trim().toLowerCase();
  if (isAscii(name)) return name;
  const wildcard = name.startsWith('*.');
  const ascii = domainToASCII(wildcard ? name.slice(2) : name);
  return ascii ? `${wildcard ? '*.' : ''}${ascii}` : undefined;
}

/** Why a DNS name is unusable, or undefined when it is fine. Expects lower case. */
export function dnsNameProblem(name: string): string | undefined {
  const bare = name.startsWith('*.') ? name.slice(2) : name;
  if (!isAscii(name)) return 'is not a valid internationalized name';
  if (bare.includes('*')) return 'a wildcard is only allowed as the whole first label, as in *.example.com';
  if (bare.length > 253) return 'is longer than 253 characters';
  if (isIP(bare)) return 'is an IP address; certificates here are for DNS names only';
  const labels = bare.split('.');
  if (!labels.every((l) => LABEL.test(l))) return 'is not a valid DNS name (letters, digits and hyphens between dots)';
  if (labels.length < 2) return 'needs at least two labels, as in mail.example.com';
  if (/^\d+$/.test(labels.at(-1)!)) return 'ends in an all-numeric label, which no top-level domain is';
  return undefined;
}

/**
 * A list of DNS names, lower-cased, IDNs as A-labels (what the CA, the certificate and SNI use);
 * each bad or repeated name is reported at its position.
 */
export const domainList = z.pipe(
  z.array(z.string()).check((ctx) => {
    if (ctx.value.length === 0)
      ctx.issues.push({ code: 'custom', input: ctx.value, message: 'needs at least one name' });
    const seen = new Set<string>();
    ctx.value.forEach((raw, i) => {
      const name = aLabelName(raw) ?? raw.trim().toLowerCase();
      const problem = dnsNameProblem(name);
      if (problem)
        ctx.issues.push({ code: 'custom', input: raw, path: [i], message: `"${name}" ${problem}`, continue: true });
      else if (seen.has(name))
        ctx.issues.push({
          code: 'custom',
          input: raw,
          path: [i],
          message: `"${name}" is listed twice`,
          continue: true,
        });
      seen.add(name);
    });
  }),
  z.transform((names: string[]) => names.map((n) => aLabelName(n) ?? n.trim().toLowerCase())),
);
