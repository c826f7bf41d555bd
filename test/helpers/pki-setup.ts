import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { makeTestPki } from './pki.js';

/** The test CAs and RSA keys, made once per run (see makeChain); removed when the run ends. */
export default async function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), 'mailcerts-test-pki-'));
  await makeTestPki(dir);
  project.provide('testPki', dir);
  return () => rmSync(dir, { recursive: true, force: true });
}

declare module 'vitest' {
  export interface ProvidedContext {
    testPki: string;
  }
}
