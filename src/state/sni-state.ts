import { join } from 'node:path';
import * as z from 'zod/mini';
import type { Logger } from '../log.js';
import { readStateFile, writeJson } from './files.js';

/** The digest of the sni/ files the containers were last reloaded with. */
const SniStateSchema = z.object({ deployedDigest: z.optional(z.string()) });
const path = (stateDir: string) => join(stateDir, 'sni.json');

export async function readSniDeployed(stateDir: string, log?: Logger): Promise<string | undefined> {
  return (await readStateFile(path(stateDir), SniStateSchema, log))?.deployedDigest;
}

export async function writeSniDeployed(stateDir: string, digest: string): Promise<void> {
  await writeJson(path(stateDir), { deployedDigest: digest });
}
