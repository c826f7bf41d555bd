// npm run demo: one real issuance against a local Pebble, published into ./demo/certs.
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  ENDPOINTS,
  MAIL_IMAGE,
  removeContainers,
  seedSelfSigned,
  servedCertificate,
  startMailStack,
} from './lib/mailstack.mjs';
import { startPebble } from './lib/pebble.mjs';

const ROOT = join(import.meta.dirname, '..');
const DEMO = join(ROOT, 'demo');
const started = performance.now();
// Each line says how long the demo has been running (setup's lines count their own).
const say = (line) => console.log(`demo: ${line} (${((performance.now() - started) / 1000).toFixed(1)}s)`);

function dockerReady() {
  try {
    execFileSync('docker', ['image', 'inspect', MAIL_IMAGE], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

rmSync(DEMO, { recursive: true, force: true });
mkdirSync(join(DEMO, 'certs'), { recursive: true });
const pebble = await startPebble({
  dir: join(DEMO, 'pebble'),
  acmePort: 14000,
  mgmtPort: 15000,
  httpPort: 5002,
  dnsPort: 8053,
  dnsMgmtPort: 8055,
});
say(`Pebble ACME CA at ${pebble.directoryUrl}`);
const withDocker = dockerReady();
let code = 1;
try {
  if (withDocker) {
    await removeContainers('mailcerts.demo=1');
    await seedSelfSigned(join(DEMO, 'certs'));
    const stack = await startMailStack(join(DEMO, 'certs'), {
      prefix: 'mailcerts-demo',
      marker: 'mailcerts.demo=1',
      project: 'mailcerts-demo',
    });
    say(`Postfix (${stack.postfix}) and Dovecot (${stack.dovecot}) run with a self-signed certificate`);
  } else {
    say('no Docker here: publishing only (DOCKER_RELOAD=false)');
  }
  const env = {
    PATH: process.env.PATH,
    ACME_DIRECTORY: pebble.directoryUrl,
    NODE_EXTRA_CA_CERTS: pebble.caFile,
    ACME_DOMAINS: 'mail.example.test,smtp.example.test,imap.example.test',
    ACME_EMAIL: 'postmaster@example.test',
    HTTP01_PORT: String(pebble.httpPort),
    CERTS_DIR: join(DEMO, 'certs'),
    STATE_DIR: join(DEMO, 'state'),
    DOCKER_RELOAD: withDocker ? 'true' : 'false',
    DOCKER_SCOPE: 'mailcerts-demo', // the demo's containers, as a compose project would label them
  };
  say('running: mailcerts run --once');
  const run = spawnSync(process.execPath, [join(ROOT, 'dist', 'cli.js'), 'run', '--once'], { env, stdio: 'inherit' });
  code = run.status ?? 1;
  spawnSync(process.execPath, [join(ROOT, 'dist', 'cli.js'), 'status'], { env, stdio: 'inherit' });
  const published = readFileSync(join(DEMO, 'certs', 'cert.pem'), 'utf8');
  say(
    `published ${join(DEMO, 'certs')}: serial ${new X509Certificate(published).serialNumber}, issuer ${new X509Certificate(published).issuer}`,
  );
  if (withDocker) {
    for (const e of Object.keys(ENDPOINTS)) {
      const served = await servedCertificate(e);
      const same = served === published;
      if (!same) code = 1;
      say(
        `${e.padEnd(10)} 127.0.0.1:${ENDPOINTS[e].port} serves serial ${new X509Certificate(served).serialNumber} ${same ? '(the published certificate)' : '(NOT the published certificate)'}`,
      );
    }
  }
} finally {
  await pebble.stop();
  if (withDocker && !process.argv.includes('--keep')) await removeContainers('mailcerts.demo=1');
  else if (withDocker)
    say(
      'the containers keep running (--keep); remove them with: docker rm -f mailcerts-demo-postfix mailcerts-demo-dovecot',
    );
}
say(code === 0 ? 'done' : 'FAILED');
if (code === 0)
  console.log(`
Next:
  - your own mail stack with docker compose: README.md, "Quick start with compose"
    (docs/getting-started.md has each step);
  - several domains on one IP, each with its own certificate (SNI): docs/sni.md;
  - every setting: docs/configuration.md.`);
process.exit(code);
