import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import type { DeployProblem, DeployReport, DeployResult, Deployer, ServedCert } from '../../src/deploy/deployer.js';
import { createLogger, type Logger } from '../../src/log.js';
import type { IssueRequest, Issued, Issuer } from '../../src/obtain/issuer.js';
import { Engine } from '../../src/run/engine.js';
import { makeChain } from './pki.js';
import { CONFIG_PARTS } from '../../src/parts.js';

/**
 * In-process doubles for the engine's two collaborators, so that its rules (keep, republish, roll
 * back, attribute a failure) run in milliseconds. The CA side signs with a local test CA; the
 * Docker side answers what each test scripts.
 */
export class FakeIssuer implements Issuer {
  orders: IssueRequest[] = [];
  /** Thrown by issue() instead of issuing, when set (for every certificate, or those named in failFor). */
  failWith?: Error;
  failFor?: string[];
  /** With failWith: only orders of these key types fail. */
  failKeyTypes?: string[];
  preflightError?: Error;

  async preflight(): Promise<string | undefined> {
    if (this.preflightError) throw this.preflightError;
    return 'fake DNS checked';
  }

  async issue(req: IssueRequest): Promise<Issued> {
    this.orders.push(req);
    if (
      this.failWith &&
      (!this.failFor || this.failFor.includes(req.spec.name)) &&
      (!this.failKeyTypes || this.failKeyTypes.includes(req.spec.keyType))
    )
      throw this.failWith;
    const chain = makeChain(req.spec.domains, {
      days: 30,
      leafKey: req.spec.keyType === 'rsa-2048' ? 'rsa-2048' : undefined,
    });
    return { privateKey: req.privateKey ?? chain.key, fullchain: chain.fullchain };
  }

  async renewalInfo(): Promise<undefined> {
    return undefined;
  }

  async sweepLeftovers(): Promise<void> {}
}

/** A container as the fake Docker side reports it: which certificates it serves, and how it answers. */
export interface FakeContainer {
  name: string;
  certs: string[];
  /** What the container does with the certificates it is handed (default: serves them). */
  answer?: (
    served: ServedCert[],
    call: number,
  ) => { ok: boolean; problem?: DeployProblem; error?: string; serves?: boolean | null; blame?: string[] };
}

export class FakeDeployer implements Deployer {
  calls: ServedCert[][] = [];
  containers: FakeContainer[];

  constructor(containers: FakeContainer[]) {
    this.containers = containers;
  }

  async deploy(certs: ServedCert[]): Promise<DeployReport> {
    this.calls.push(certs);
    const call = this.calls.length;
    const results = this.containers.map((c): DeployResult => {
      const a = c.answer?.(
        certs.filter((x) => c.certs.includes(x.name)),
        call,
      ) ?? { ok: true, serves: true };
      return {
        container: c.name,
        certs: c.certs,
        blame: a.blame,
        reloaded: true,
        serves: a.serves ?? (a.ok ? true : null),
        ok: a.ok,
        problem: a.problem,
        error: a.error,
      };
    });
    return { results, complete: true };
  }
}

export interface LogLines {
  lines: Record<string, unknown>[];
  log: Logger;
}

export function captureLog(): LogLines {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('info', { write: (l: string) => lines.push(JSON.parse(l)) });
  return { lines, log };
}

/** A configuration over a fresh directory: one certificate per entry of `names` (its domains). */
export function testConfig(
  certs: { name: string; domains: string[]; challenge?: 'http-01' | 'dns-01'; keyType?: string | string[] }[],
  env: Record<string, string> = {},
  /** The directory of an earlier testConfig: the same CERTS_DIR and STATE_DIR with a changed list. */
  again?: string,
): { config: Config; dir: string } {
  const dir = again ?? mkdtempSync(join(tmpdir(), 'mailcerts-engine-'));
  const file = join(dir, 'mailcerts.json');
  writeFileSync(file, JSON.stringify({ certificates: certs }));
  const config = loadConfig(
    {
      MAILCERTS_CONFIG: file,
      CERTS_DIR: join(dir, 'certs'),
      STATE_DIR: join(dir, 'state'),
      DOCKER_SCOPE: 'test',
      CLOUDFLARE_API_TOKEN: 'unused-token-0123456789abcdef',
      ...env,
    },
    { inContainer: false, parts: CONFIG_PARTS },
  );
  return { config, dir };
}

export function engineWith(config: Config, issuer: Issuer, deployer: Deployer, log: Logger): Engine {
  return new Engine(config, log, { issuer, deployer });
}
