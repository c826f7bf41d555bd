import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { bindMissing } from '../../scripts/lib/bind.mjs';
import { pebbleMissing, startPebble } from '../../scripts/lib/pebble.mjs';
import { unboundMissing } from '../../scripts/lib/unbound.mjs';
import {
  MAIL_IMAGE,
  MAIL_IMAGE_TRIXIE,
  removeContainers,
  removeStaleTestContainers,
  TEST_MARKER,
} from '../../scripts/lib/mailstack.mjs';
import { freePorts } from '../helpers/ports.js';

const ROOT = join(import.meta.dirname, '..', '..');
const TRIXIE = join(process.env.MAILCERTS_CACHE ?? '/var/cache/mailcerts', 'trixie');
export const PEBBLE_26 = join(TRIXIE, 'pebble', 'usr', 'bin', 'pebble');
export const MAILCERTS_IMAGE = process.env.MAILCERTS_IMAGE ?? 'mailcerts:local';
export const COMPOSE = join(TRIXIE, 'docker-compose', 'usr', 'libexec', 'docker', 'cli-plugins', 'docker-compose');

/** Fails (never skips) when a real component is missing, and says how to get it. */
function requireComponents(): void {
  const problems: string[] = [];
  const pebble = pebbleMissing();
  if (pebble) problems.push(pebble);
  const bind = bindMissing();
  if (bind) problems.push(bind);
  const unbound = unboundMissing();
  if (unbound) problems.push(unbound);
  if (!existsSync(PEBBLE_26))
    problems.push(`Pebble 2.6 (ARI) is missing at ${PEBBLE_26}: run "bash scripts/trixie-tools.sh"`);
  if (!existsSync(COMPOSE))
    problems.push(`Docker Compose v2 is missing at ${COMPOSE}: run "bash scripts/trixie-tools.sh"`);
  try {
    execFileSync('docker', ['info'], { stdio: 'pipe' });
    for (const [image, script] of [
      [MAIL_IMAGE, 'mail-image.sh'],
      [MAIL_IMAGE_TRIXIE, 'mail-image.sh trixie'],
      [MAILCERTS_IMAGE, 'image.sh'],
    ]) {
      try {
        execFileSync('docker', ['image', 'inspect', image!], { stdio: 'pipe' });
      } catch {
        problems.push(`the Docker image ${image} is missing: run "bash scripts/${script}"`);
      }
    }
  } catch {
    problems.push('no Docker Engine answers (docker info failed): run "bash scripts/setup.sh", which starts dockerd');
  }
  if (problems.length) throw new Error(`The integration tests need real components:\n - ${problems.join('\n - ')}`);
}

export default async function setup(project: TestProject) {
  requireComponents();
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
  if (!existsSync(join(ROOT, 'dist', 'cli.js'))) throw new Error('the build produced no dist/cli.js');
  const work = join(ROOT, '.test-work', 'integration');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  // Only what killed runs left: the containers of a run side by side (another clone) carry its own
  // mailcerts.test.run label and stay. Every port below, and every mail port, is picked free.
  await removeStaleTestContainers();
  const [acmePort, mgmtPort, httpPort, dnsPort, dnsMgmtPort] = await freePorts(5);
  const pebble = await startPebble({ dir: join(work, 'pebble'), acmePort, mgmtPort, httpPort, dnsPort, dnsMgmtPort });
  project.provide('pebble', {
    directoryUrl: pebble.directoryUrl,
    caFile: pebble.caFile,
    httpPort: pebble.httpPort,
    mgmtPort: pebble.mgmtPort,
    dnsPort: pebble.dnsPort,
    dnsMgmtPort: pebble.dnsMgmtPort,
    root: await pebble.root(),
  });
  project.provide('workDir', work);
  project.provide('pebble26', PEBBLE_26);
  project.provide('compose', COMPOSE);
  project.provide('mailcertsImage', MAILCERTS_IMAGE);
  return async () => {
    await removeContainers(TEST_MARKER);
    await pebble.stop();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    pebble: {
      directoryUrl: string;
      caFile: string;
      httpPort: number;
      mgmtPort: number;
      dnsPort: number;
      dnsMgmtPort: number;
      root: string;
    };
    workDir: string;
    pebble26: string;
    compose: string;
    mailcertsImage: string;
  }
}
