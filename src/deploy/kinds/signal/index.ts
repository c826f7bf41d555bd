import { constants } from 'node:os';
import type { ReloadAction, ServerKind } from '../kind.js';

export interface SignalAction extends ReloadAction {
  kind: 'signal';
  signal: string;
}

/** signal:<NAME>: a server that reloads on a signal (SIGHUP, SIGUSR1), sent to the container. */
export const signal: ServerKind<SignalAction> = {
  name: 'signal',
  syntax: 'signal:<NAME>',
  argument(raw) {
    const upper = raw.trim().toUpperCase();
    const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
    if (!(name in constants.signals)) return { error: `unknown signal "${raw}"; use a name such as signal:SIGHUP` };
    return { kind: 'signal', signal: name };
  },
  plan: (action) => ({ checks: [], steps: [{ signal: action.signal }] }),
};
