import { parse as parseShellWords } from 'shell-quote';
import type { ReloadAction, ServerKind } from '../kind.js';

export interface ExecAction extends ReloadAction {
  kind: 'exec';
  argv: string[];
}

/** exec:<command>: any server, reloaded by a command of its own, split into words without a shell. */
export const exec: ServerKind<ExecAction> = {
  name: 'exec',
  syntax: 'exec:<command>',
  argument(raw) {
    const variables: string[] = [];
    // Without a shell, $VAR would silently become an empty argument: refuse it instead.
    const words = parseShellWords(raw, (name: string) => {
      variables.push(name);
      return '';
    });
    if (variables.length > 0) {
      return {
        error: `exec: commands run without a shell, so $${variables[0]} would not be expanded; write exec:sh -c '... $${variables[0]} ...' if the container's shell should expand it`,
      };
    }
    if (words.length === 0) return { error: 'exec: needs a command, such as exec:nginx -s reload' };
    if (!words.every((w): w is string => typeof w === 'string')) {
      return {
        error:
          "exec: commands run without a shell, so pipes, redirections, globs and ; are not allowed; use exec:sh -c '...' if you need a shell",
      };
    }
    return { kind: 'exec', argv: words };
  },
  plan: (action) => ({ checks: [], steps: [{ exec: { argv: action.argv }, failure: 'reload failed' }] }),
};
