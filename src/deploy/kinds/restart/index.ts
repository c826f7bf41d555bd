import type { ServerKind } from '../kind.js';

/** restart: a server that reads its certificate only when it starts. */
export const restart: ServerKind = {
  name: 'restart',
  syntax: 'restart',
  plan: () => ({ checks: [], steps: [{ restart: true }] }),
};
