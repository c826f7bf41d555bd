// A local double of the Cloudflare v4 REST API, for the paths mailcerts (through the official SDK) uses.
// TXT records become visible in DNS by being published into pebble-challtestsrv, after a delay.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { queryProblem, recordBodyProblem } from './cloudflare-rules.js';

export interface TokenSpec {
  status?: 'active' | 'disabled' | 'expired';
  /** Zone ids the token is scoped to, or '*' for all. */
  zones: string[] | '*';
  /** As in the zone object: '#zone:read', '#dns_records:read', '#dns_records:edit'. */
  permissions: string[];
  /** false: the zone object carries no `permissions` field (what it enforces is still `permissions`). */
  listsPermissions?: boolean;
}

export interface DoubleZone {
  id: string;
  name: string;
}

export interface DoubleRecord {
  id: string;
  zone_id: string;
  zone_name: string;
  name: string;
  type: string;
  content: string;
  ttl: number;
  /** TLSA: the fields as sent; content is then their formatted form, as Cloudflare returns it. */
  data?: { usage: number; selector: number; matching_type: number; certificate: string };
  comment?: string;
  proxied: boolean;
  proxiable: boolean;
  created_on: string;
  modified_on: string;
  visible: boolean;
}

export interface Fault {
  status: number;
  code: number;
  message: string;
  retryAfter?: number;
}

export interface RequestSeen {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
  /** Whether an Authorization: Bearer header came with it (the token itself is not kept). */
  bearer: boolean;
}

export interface CloudflareDouble {
  url: string;
  zones: DoubleZone[];
  records: Map<string, DoubleRecord>;
  requests: RequestSeen[];
  /** Every TXT value ever visible per name at the same time (the most at once). */
  maxConcurrent: Map<string, number>;
  visibleAfterMs: number;
  failNext(count: number, fault: Fault): void;
  /** The next create is stored, but its answer is lost (the connection resets), as when a response times out. */
  loseNextCreateResponse(): void;
  stop(): Promise<void>;
}

const now = () => new Date().toISOString();
const hex = (n: number) => randomBytes(n).toString('hex');

export function zoneId(): string {
  return hex(16);
}

export async function startCloudflareDouble(opts: {
  zones: DoubleZone[];
  tokens: Record<string, TokenSpec>;
  /** pebble-challtestsrv's management URL, e.g. http://127.0.0.1:28055. */
  challtestsrv: string;
  visibleAfterMs?: number;
  /** Where TLSA records become visible (pebble-challtestsrv has no TLSA): sets a name's whole RRset, with its TTL. */
  tlsaDns?: (name: string, values: string[], ttl: number) => Promise<void>;
}): Promise<CloudflareDouble> {
  const records = new Map<string, DoubleRecord>();
  const requests: RequestSeen[] = [];
  const faults: Fault[] = [];
  const maxConcurrent = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  let loseCreate = false;

  async function challtest(path: string, body: unknown): Promise<void> {
    const res = await fetch(`${opts.challtestsrv}${path}`, { method: 'POST', body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`challtestsrv ${path}: HTTP ${res.status}`);
  }

  /** Makes DNS show exactly the visible TXT (or TLSA) values of a name. */
  async function syncDns(name: string, type = 'TXT'): Promise<void> {
    if (type === 'TLSA') {
      const visible = [...records.values()].filter((r) => r.type === 'TLSA' && r.name === name && r.visible);
      await opts.tlsaDns?.(
        name,
        visible.map((r) => r.content),
        Math.min(...visible.map((r) => r.ttl), 3600),
      );
      return;
    }
    const host = `${name}.`;
    await challtest('/clear-txt', { host });
    const values = [...records.values()].filter((r) => r.type === 'TXT' && r.name === name && r.visible);
    for (const r of values) await challtest('/set-txt', { host, value: r.content.replace(/^"|"$/g, '') });
    maxConcurrent.set(name, Math.max(maxConcurrent.get(name) ?? 0, values.length));
  }

  const envelope = (result: unknown, result_info?: unknown) => ({
    success: true,
    errors: [],
    messages: [],
    result,
    ...(result_info ? { result_info } : {}),
  });
  const failure = (code: number, message: string) => ({
    success: false,
    errors: [{ code, message }],
    messages: [],
    result: null,
  });

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): number {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
    return status;
  }

  function paginate<T>(items: T[], query: Record<string, string>, defaultPer: number, maxPer: number) {
    const per = Math.min(Math.max(Number(query.per_page ?? defaultPer) || defaultPer, 5), maxPer);
    const page = Math.max(Number(query.page ?? 1) || 1, 1);
    const slice = items.slice((page - 1) * per, page * per);
    return {
      slice,
      info: {
        page,
        per_page: per,
        count: slice.length,
        total_count: items.length,
        total_pages: Math.max(1, Math.ceil(items.length / per)),
      },
    };
  }

  const zoneObject = (z: DoubleZone, t: TokenSpec) => ({
    id: z.id,
    name: z.name,
    status: 'active',
    paused: false,
    type: 'full',
    development_mode: 0,
    name_servers: ['ada.ns.cloudflare.com', 'bob.ns.cloudflare.com'],
    original_name_servers: null,
    account: { id: 'acc0123456789abcdef0123456789abc', name: 'Double account' },
    ...(t.listsPermissions === false ? {} : { permissions: t.permissions }),
    created_on: '2024-01-01T00:00:00Z',
    modified_on: '2024-01-01T00:00:00Z',
    activated_on: '2024-01-01T00:00:00Z',
  });

  const recordObject = ({ visible: _v, ...r }: DoubleRecord) => ({ ...r, meta: {}, tags: [], settings: {} });

  async function readBody(req: IncomingMessage): Promise<unknown> {
    let body = '';
    for await (const chunk of req) body += chunk;
    try {
      return body ? JSON.parse(body) : undefined;
    } catch {
      return Symbol.for('malformed');
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<number> {
    const query = Object.fromEntries(url.searchParams);
    const path = url.pathname.replace(/\/$/, '');
    const fault = faults.shift();
    if (fault)
      return send(
        res,
        fault.status,
        failure(fault.code, fault.message),
        fault.retryAfter !== undefined ? { 'retry-after': String(fault.retryAfter) } : {},
      );
    if (!path.startsWith('/client/v4/')) return send(res, 404, failure(7000, 'No route for that URI'));
    const auth = req.headers.authorization ?? '';
    if (!auth.startsWith('Bearer '))
      return send(res, 400, {
        ...failure(6003, 'Invalid request headers'),
        errors: [
          {
            code: 6003,
            message: 'Invalid request headers',
            error_chain: [{ code: 6111, message: 'Invalid format for Authorization header' }],
          },
        ],
      });
    const token = opts.tokens[auth.slice(7)];
    const route = path.slice('/client/v4'.length);

    if (route === '/user/tokens/verify' && req.method === 'GET') {
      if (!token) return send(res, 401, failure(1000, 'Invalid API Token'));
      return send(res, 200, {
        ...envelope({ id: hex(16), status: token.status ?? 'active' }),
        messages: [{ code: 10000, message: 'This API Token is valid and active', type: null }],
      });
    }
    if (!token || (token.status ?? 'active') !== 'active')
      return send(res, 403, failure(10000, 'Authentication error'));
    const visible = (z: DoubleZone) => token.zones === '*' || token.zones.includes(z.id);
    const can = (p: string) => token.permissions.includes(p);

    if (route === '/zones' && req.method === 'GET') {
      const bad = queryProblem('zones', query);
      if (bad) return send(res, bad.status, failure(bad.code, bad.message));
      if (!can('#zone:read')) return send(res, 403, failure(9109, 'Unauthorized to access requested resource'));
      const list = opts.zones.filter(visible).filter((z) => !query.name || z.name === query.name);
      const { slice, info } = paginate(list, query, 20, 50);
      return send(
        res,
        200,
        envelope(
          slice.map((z) => zoneObject(z, token)),
          info,
        ),
      );
    }
    const zm = route.match(/^\/zones\/([0-9a-f]{32})(\/dns_records(?:\/([0-9a-f]{32}))?)?$/);
    const zone = zm ? opts.zones.find((z) => z.id === zm[1] && visible(z)) : undefined;
    if (!zm || !zone)
      return send(res, 404, failure(7003, `Could not route to ${route}, perhaps your object identifier is invalid?`));
    if (!zm[2]) {
      if (req.method !== 'GET') return send(res, 405, failure(10405, 'Method not allowed'));
      if (!can('#zone:read')) return send(res, 403, failure(9109, 'Unauthorized to access requested resource'));
      return send(res, 200, envelope(zoneObject(zone, token)));
    }
    const recordId = zm[3];
    if (req.method === 'GET' && !recordId) {
      if (!can('#dns_records:read') && !can('#dns_records:edit'))
        return send(res, 403, failure(10000, 'Authentication error'));
      const bad = queryProblem('records', query);
      if (bad) return send(res, bad.status, failure(bad.code, bad.message));
      const list = [...records.values()].filter(
        (r) =>
          r.zone_id === zone.id &&
          (!query.type || r.type === query.type) &&
          (!query['name.exact'] && !query.name ? true : r.name === (query['name.exact'] ?? query.name)),
      );
      const { slice, info } = paginate(list, query, 100, 5000);
      return send(res, 200, envelope(slice.map(recordObject), info));
    }
    if (!can('#dns_records:edit')) return send(res, 403, failure(10000, 'Authentication error'));
    if (req.method === 'POST' && !recordId) {
      const raw = await readBody(req);
      const bad = recordBodyProblem(raw);
      if (bad) return send(res, bad.status, failure(bad.code, bad.message));
      const body = raw as Partial<DoubleRecord> & { type: 'TXT' | 'TLSA'; name: string; ttl: number };
      const name = body.name.replace(/\.$/, '').toLowerCase();
      // TLSA is written as data fields; Cloudflare answers with content formatted from them.
      if (body.type === 'TLSA') {
        const d = body.data!;
        body.content = `${d.usage} ${d.selector} ${d.matching_type} ${d.certificate.toLowerCase()}`;
      }
      if (name !== zone.name && !name.endsWith(`.${zone.name}`))
        return send(res, 400, failure(1004, 'DNS Validation Error'));
      const ttl = body.ttl;
      if (
        [...records.values()].some(
          (r) => r.zone_id === zone.id && r.type === body.type && r.name === name && r.content === body.content,
        )
      ) {
        return send(res, 400, failure(81058, 'An identical record already exists.'));
      }
      const rec: DoubleRecord = {
        id: hex(16),
        zone_id: zone.id,
        zone_name: zone.name,
        name,
        type: body.type,
        content: String(body.content),
        ttl,
        ...(body.data ? { data: body.data } : {}),
        comment: body.comment,
        proxied: false,
        proxiable: false,
        created_on: now(),
        modified_on: now(),
        visible: false,
      };
      records.set(rec.id, rec);
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!records.has(rec.id)) return;
        rec.visible = true;
        void syncDns(rec.name, rec.type);
      }, double.visibleAfterMs);
      timers.add(timer);
      if (loseCreate) {
        loseCreate = false;
        req.socket.destroy();
        return 0;
      }
      return send(res, 200, envelope(recordObject(rec)));
    }
    if (req.method === 'DELETE' && recordId) {
      const rec = records.get(recordId);
      if (!rec || rec.zone_id !== zone.id) return send(res, 404, failure(81044, 'Record does not exist.'));
      records.delete(recordId);
      await syncDns(rec.name, rec.type);
      return send(res, 200, envelope({ id: recordId }));
    }
    return send(res, 405, failure(10405, 'Method not allowed'));
  }

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://double');
    handle(req, res, url).then(
      (status) =>
        requests.push({
          method: req.method ?? '',
          path: url.pathname,
          query: Object.fromEntries(url.searchParams),
          status,
          bearer: (req.headers.authorization ?? '').startsWith('Bearer '),
        }),
      (err: unknown) => send(res, 500, failure(10001, `double failed: ${String(err)}`)),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;

  const double: CloudflareDouble = {
    url: `http://127.0.0.1:${port}/client/v4`,
    zones: opts.zones,
    records,
    requests,
    maxConcurrent,
    visibleAfterMs: opts.visibleAfterMs ?? 0,
    failNext(count, fault) {
      for (let i = 0; i < count; i++) faults.push(fault);
    },
    loseNextCreateResponse() {
      loseCreate = true;
    },
    async stop() {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
  return double;
}
