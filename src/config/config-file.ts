import { readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { describe } from './issues.js';
import type { ConfigParts } from './parts.js';
import { type ConfigFile, fileSchema } from './schema.js';

/** Config files beyond this size are refused before they are parsed. */
const MAX_CONFIG_BYTES = 1_048_576;

/** A config file is JSON by its name; anything else is read as YAML. */
const isJson = (path: string) => extname(path) === '.json';

/** The YAML parser, loaded only when the config file is YAML (it costs several MB of memory). */
export type YamlParser = Pick<typeof import('yaml'), 'parseDocument'>;

/**
 * What loadConfig needs loaded first for this environment: the YAML parser when MAILCERTS_CONFIG
 * names a YAML file, or when MAILCERTS_CONFIG_FILE holds the path (read later, with the rest).
 */
export async function configParsers(env: NodeJS.ProcessEnv = process.env): Promise<{ yaml?: YamlParser }> {
  const file = env.MAILCERTS_CONFIG;
  const yaml = env.MAILCERTS_CONFIG_FILE ? true : !!file && !isJson(file);
  return yaml ? { yaml: await import('./yaml.js') } : {};
}

/** MAILCERTS_CONFIG: the certificates it lists, or undefined with the problems added. */
export function readConfigFile(
  path: string,
  parts: ConfigParts,
  problems: string[],
  yaml: YamlParser | undefined,
): ConfigFile | undefined {
  const where = `MAILCERTS_CONFIG (${path})`;
  let text: string;
  try {
    if (statSync(path).size > MAX_CONFIG_BYTES) {
      problems.push(`${where}: the file is larger than 1 MiB; a list of certificates is far smaller`);
      return undefined;
    }
    text = readFileSync(path, 'utf8');
  } catch (err) {
    problems.push(
      `${where}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'}); check the path and the volume`,
    );
    return undefined;
  }
  let data: unknown;
  if (isJson(path)) {
    try {
      data = JSON.parse(text);
    } catch (err) {
      problems.push(`${where}: not valid JSON: ${(err as Error).message}`);
      return undefined;
    }
  } else {
    if (!yaml) throw new Error('loadConfig: a YAML config file needs opts.yaml (from configParsers())');
    const doc = yaml.parseDocument(text, { prettyErrors: true });
    if (doc.errors.length > 0) {
      for (const e of doc.errors) problems.push(`${where}: not valid YAML: ${e.message.split('\n')[0]}`);
      return undefined;
    }
    try {
      data = doc.toJS({ maxAliasCount: 50 }); // an alias bomb stops here, not in memory
    } catch (err) {
      problems.push(
        `${where}: the YAML cannot be read: ${(err as Error).message.split('\n')[0]}; write the certificates out without nested aliases`,
      );
      return undefined;
    }
  }
  const parsed = fileSchema(parts).safeParse(data);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(describe(where, issue));
    return undefined;
  }
  return parsed.data;
}
