// The rules that keep README.md and docs/*.md from rotting: included blocks equal the files they
// name, and relative links point at files and headings that exist. Used by scripts/config-docs.mjs
// (npm run docs refreshes the included blocks) and by test/unit/docs.test.ts (which fails on any
// difference).
//
// An included block, in Markdown:
//
//   <!-- include: compose.example.yml -->            the whole file
//   <!-- include: stack.example.yml#mailcerts -->    the lines between "docs:begin mailcerts" and "docs:end mailcerts"
//   <!-- include: docker/mailstack/postfix/main.cf grep=^smtpd_tls -->   only the lines that match
//   ```yaml
//   …
//   ```
//   <!-- /include -->
//
// With "raw" after the spec, the content stands as Markdown, without a fence.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import GithubSlugger from 'github-slugger';

/** README.md and every page of docs/, as paths relative to the repository. */
export function docPages(root: string): string[] {
  const docs = existsSync(join(root, 'docs'))
    ? readdirSync(join(root, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .sort()
        .map((f) => `docs/${f}`)
    : [];
  return ['README.md', ...docs];
}

const INCLUDE = /^<!-- include: (\S+?)(?:#([\w-]+))?(?: grep=(.+?))?( raw)? -->\n([\s\S]*?)^<!-- \/include -->$/gm;

export interface Include {
  /** As written: path, region or grep. */
  spec: string;
  path: string;
  /** The block as it stands in the page, between the markers. */
  body: string;
  /** The block as the file makes it now. */
  expected: string;
}

/** What a spec names in the file: all of it, a region, or the lines that match. */
function content(root: string, path: string, region?: string, grep?: string): string {
  const file = join(root, path);
  if (!existsSync(file)) throw new Error(`include: ${path} does not exist`);
  const text = readFileSync(file, 'utf8');
  if (region) {
    const lines = text.split('\n');
    const begin = lines.findIndex((l) => l.includes(`docs:begin ${region}`));
    const end = lines.findIndex((l, i) => i > begin && l.includes(`docs:end ${region}`));
    if (begin < 0 || end < 0) throw new Error(`include: ${path} has no region "${region}" (docs:begin/docs:end)`);
    return `${lines.slice(begin + 1, end).join('\n')}\n`;
  }
  if (grep) {
    const re = new RegExp(grep);
    const lines = text.split('\n').filter((l) => re.test(l));
    if (lines.length === 0) throw new Error(`include: no line of ${path} matches ${grep}`);
    return `${lines.join('\n')}\n`;
  }
  return text.endsWith('\n') ? text : `${text}\n`;
}

/** Each included block of a page, with what it should hold. */
export function includes(root: string, page: string): Include[] {
  return [...page.matchAll(INCLUDE)].map((m) => {
    const [, path, region, grep, raw, body] = m as unknown as string[];
    const text = content(root, path!, region, grep);
    const fence = /^(```+)([^\n]*)\n/.exec(body ?? '');
    const expected = raw ? text : `${fence?.[1] ?? '```'}${fence?.[2] ?? ''}\n${text}${fence?.[1] ?? '```'}\n`;
    return {
      spec: `${path}${region ? `#${region}` : ''}${grep ? ` grep=${grep}` : ''}`,
      path: path!,
      body: body!,
      expected,
    };
  });
}

/** The page with every included block made equal to its file again. */
export function refreshIncludes(root: string, page: string, _file?: string): string {
  const blocks = includes(root, page);
  let i = 0;
  return page.replace(INCLUDE, (whole: string) => {
    const b = blocks[i++]!;
    return `${whole.slice(0, whole.indexOf('\n') + 1)}${b.expected}<!-- /include -->`;
  });
}

/** The page without fenced code blocks and inline code, where links and headings are not Markdown. */
function prose(page: string): string {
  return page.replace(/^(```+)[^\n]*\n[\s\S]*?^\1\s*$/gm, '').replace(/`[^`\n]*`/g, '``');
}

/** The anchors GitHub gives the headings of a page. */
export function anchors(page: string): Set<string> {
  const slugger = new GithubSlugger();
  const out = new Set<string>();
  const text = page.replace(/^(```+)[^\n]*\n[\s\S]*?^\1\s*$/gm, '');
  for (const m of text.matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const plain = m[1]!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/`/g, '')
      .replace(/\*\*|__/g, '');
    out.add(slugger.slug(plain));
  }
  return out;
}

/**
 * Every relative link of a page that points at no file, or at a heading its page does not have.
 */
export function brokenLinks(root: string, file: string): string[] {
  const page = readFileSync(join(root, file), 'utf8');
  const problems: string[] = [];
  for (const m of prose(page).matchAll(/\[[^\]]*\]\(([^)\s]+)(?: "[^"]*")?\)/g)) {
    const target = m[1]!;
    if (/^[a-z]+:/i.test(target)) continue; // https:, mailto:
    const [path, anchor] = target.split('#') as [string, string | undefined];
    const resolved = path ? normalize(join(dirname(file), path)) : file;
    if (relative(root, join(root, resolved)).startsWith('..') || !existsSync(join(root, resolved))) {
      problems.push(`${file}: link to ${target}: ${resolved} does not exist`);
      continue;
    }
    if (anchor === undefined) continue;
    if (!resolved.endsWith('.md') || statSync(join(root, resolved)).isDirectory()) {
      problems.push(`${file}: link to ${target}: only a Markdown page has headings to link to`);
      continue;
    }
    if (!anchors(readFileSync(join(root, resolved), 'utf8')).has(anchor))
      problems.push(`${file}: link to ${target}: ${resolved} has no heading with the anchor #${anchor}`);
  }
  return problems;
}
