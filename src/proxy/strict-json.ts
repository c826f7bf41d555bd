import { evaluate, parse } from '@humanwhocodes/momoa';

/**
 * JSON as the proxy judges it. Docker's Go decoder keeps the last of two equal keys and matches
 * field names case-insensitively (with Unicode folding: "ſecrets" is "Secrets" to it), so a body
 * that JSON.parse reads one way could be read another way by the engine. A body with a key twice,
 * two keys that differ only in case, or a key outside printable ASCII is refused: what the proxy
 * judged is then exactly what Docker decodes. momoa gives the syntax tree with every member, which
 * JSON.parse does not.
 */
export class StrictJsonError extends Error {
  override name = 'StrictJsonError';
}

type Node = ReturnType<typeof parse>['body'];

function checkKeys(node: Node, path: string): void {
  // A number JavaScript cannot hold exactly would be judged as another one than Docker reads.
  if (node.type === 'Number' && Math.abs(node.value) > Number.MAX_SAFE_INTEGER)
    throw new StrictJsonError(`the number at ${path || 'the top'} is too large to be judged exactly`);
  if (node.type === 'Array') {
    for (const [i, e] of node.elements.entries()) checkKeys(e.value, `${path}[${i}]`);
    return;
  }
  if (node.type !== 'Object') return;
  const seen = new Map<string, string>();
  for (const m of node.members) {
    const key = m.name.type === 'String' ? m.name.value : m.name.name;
    if (!/^[\x20-\x7e]*$/.test(key))
      throw new StrictJsonError(`the key ${JSON.stringify(key)} at ${path || 'the top'} is not plain ASCII`);
    const folded = key.toLowerCase();
    const before = seen.get(folded);
    if (before !== undefined) {
      throw new StrictJsonError(
        before === key
          ? `the key "${key}" appears twice at ${path || 'the top'}`
          : `the keys "${before}" and "${key}" at ${path || 'the top'} differ only in case`,
      );
    }
    seen.set(folded, key);
    checkKeys(m.value, path ? `${path}.${key}` : key);
  }
}

/** Parses a request body; throws StrictJsonError saying what is wrong with it. */
export function parseStrictJson(body: Buffer): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new StrictJsonError('the body is not UTF-8');
  }
  let doc: ReturnType<typeof parse>;
  try {
    doc = parse(text, { mode: 'json' });
  } catch (err) {
    throw new StrictJsonError(`the body is not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  checkKeys(doc.body, '');
  return evaluate(doc.body);
}

export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Exactly these keys (each optional ones may be missing), or what is wrong. */
export function onlyKeys(
  o: Record<string, unknown>,
  allowed: string[],
  required: string[] = allowed,
): string | undefined {
  const extra = Object.keys(o).filter((k) => !allowed.includes(k));
  if (extra.length > 0) return `it has ${extra.map((k) => `"${k}"`).join(', ')}, which mailcerts never sends`;
  const missing = required.filter((k) => !(k in o));
  if (missing.length > 0) return `it lacks ${missing.map((k) => `"${k}"`).join(', ')}`;
  return undefined;
}

/** Equal as JSON values: objects whatever their key order, arrays in order. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  }
  if (!isRecord(a) || !isRecord(b)) return false;
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => k in b && sameJson(a[k], b[k]));
}
