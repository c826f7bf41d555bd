import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Logger } from '../log.js';
import { errorMessage } from '../util/errors.js';
import type { EngineAnswer } from './engine-socket.js';
import type { ProxyContext, ProxyRequest, Rule, Verdict } from './rules.js';

/**
 * The proxy's HTTP side: each request is read whole (bodies are small), matched against the
 * rules, judged, and then forwarded exactly as judged, or refused with 403 and the reason. It is
 * forwarded without its API version prefix: the engine then reads the body as its own version
 * does, as the proxy's lookups see it (an older version would have it drop fields, capabilities
 * among them, from a spec that the proxy judged unchanged).
 */
const MAX_BODY = 1024 * 1024;
/** What may come after the API version: no percent-encoding, no dot segments, no backslashes. */
const PATH = /^(\/v\d{1,2}\.\d{1,3})?(\/[A-Za-z0-9_./-]*)$/;
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']);

const endToEnd = (headers: IncomingHttpHeaders) =>
  Object.fromEntries(Object.entries(headers).filter(([k, v]) => !HOP_BY_HOP.has(k) && v !== undefined)) as Record<
    string,
    string | string[]
  >;

function send(res: ServerResponse, status: number, headers: IncomingHttpHeaders, body?: Buffer): void {
  res.writeHead(status, endToEnd(headers));
  res.end(body);
}

function refuse(res: ServerResponse, status: number, why: string): void {
  const body = Buffer.from(JSON.stringify({ message: `mailcerts proxy: ${why}` }));
  send(res, status, { 'content-type': 'application/json', 'content-length': String(body.length) }, body);
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) return undefined;
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** The request as the rules see it, or why it is refused before any rule is asked. */
function parseRequest(req: IncomingMessage, body: Buffer): { request: ProxyRequest } | { refused: string } {
  const raw = req.url ?? '';
  const q = raw.indexOf('?');
  const m = PATH.exec(q < 0 ? raw : raw.slice(0, q));
  if (!m || m[2]!.includes('..') || m[2]!.includes('//')) return { refused: 'malformed path' };
  const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
  const keys = [...query.keys()];
  if (new Set(keys).size !== keys.length) return { refused: 'a query parameter appears twice' };
  return { request: { method: req.method ?? '', path: m[2]!, query, body } };
}

async function judge(rules: Rule[], r: ProxyRequest, ctx: ProxyContext): Promise<Verdict> {
  for (const rule of rules) {
    if (!rule.methods.includes(r.method)) continue;
    const m = rule.path.exec(r.path);
    if (!m) continue;
    const extra = [...r.query.keys()].filter((k) => !(rule.query ?? []).includes(k));
    if (extra.length > 0) return { deny: `the query parameter ${extra[0]} is not allowed on this call`, status: 403 };
    return rule.judge(r, m, ctx);
  }
  return { deny: 'not a call mailcerts makes', status: 403 };
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  rules: Rule[],
  ctx: ProxyContext,
  log: Logger,
): Promise<void> {
  const what = { method: req.method, path: (req.url ?? '').slice(0, 300) };
  if (req.headers.upgrade) {
    log.warn({ step: 'proxy', ...what }, 'refused: a connection upgrade (hijack)');
    return refuse(res, 403, 'connection upgrades are not allowed');
  }
  const body = await readBody(req);
  if (!body) {
    log.warn({ step: 'proxy', ...what }, 'refused: the body is too large');
    return refuse(res, 413, `the body is larger than ${MAX_BODY / 1024} KB`);
  }
  const parsed = parseRequest(req, body);
  if ('refused' in parsed) {
    log.warn({ step: 'proxy', ...what, why: parsed.refused }, 'refused');
    return refuse(res, 403, parsed.refused);
  }
  const { request } = parsed;
  const verdict = await judge(rules, request, ctx).catch(
    (err: unknown): Verdict => ({ deny: `could not judge the call: ${errorMessage(err)}`, status: 502 }),
  );
  if ('deny' in verdict) {
    log.warn({ step: 'proxy', ...what, why: verdict.deny }, 'refused');
    return refuse(res, verdict.status ?? 403, verdict.deny);
  }
  const target = `${request.path}${request.query.size > 0 ? `?${request.query.toString()}` : ''}`;
  const payload = verdict.body ?? (body.length > 0 ? body : undefined);
  if (verdict.answer) {
    const a: EngineAnswer = await verdict.answer(await ctx.engine.call(request.method, target, payload));
    log.info({ step: 'proxy', ...what, status: a.status }, 'forwarded');
    return send(res, a.status, a.headers, a.body);
  }
  const upstream = await ctx.engine.open(request.method, target, payload);
  log.info({ step: 'proxy', ...what, status: upstream.statusCode }, 'forwarded');
  res.writeHead(upstream.statusCode ?? 502, endToEnd(upstream.headers));
  upstream.pipe(res);
  res.on('close', () => upstream.destroy());
}

export function proxyServer(rules: Rule[], ctx: ProxyContext, log: Logger): Server {
  return createServer((req, res) => {
    handle(req, res, rules, ctx, log).catch((err: unknown) => {
      log.error({ step: 'proxy', method: req.method, path: req.url, error: errorMessage(err) }, 'the call failed');
      if (!res.headersSent) refuse(res, 502, `the Docker engine could not be asked: ${errorMessage(err)}`);
      else res.destroy();
    });
  });
}
