import type * as z from 'zod/mini';

/** Where an issue is: "certificates[0].domains[1]". */
function pathOf(issue: z.core.$ZodIssue): string {
  return issue.path
    .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
    .join('')
    .replace(/^\./, '');
}

/** One problem line: the variable (or the file and entry) and what to change. */
export function describe(prefix: string, issue: z.core.$ZodIssue, files?: Map<string, string>): string {
  const path = pathOf(issue);
  // An issue on a list element: "ACME_DOMAINS[1]" reads worse than "ACME_DOMAINS".
  const where = prefix ? `${prefix}${path ? ` ${path}` : ''}` : path.replace(/\[\d+\]$/, '');
  const key = String(issue.path[0] ?? '');
  const file = files?.get(key);
  // A value read from a file is never echoed: the path may point at a file that holds a secret.
  if (file !== undefined)
    return `${key}_FILE (${file}): the file's content is not a valid ${key}: ${issue.message.replace(/"[^"]*"/g, 'the value')}`;
  return `${where}: ${issue.message}`;
}
