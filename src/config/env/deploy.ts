import { isIP } from 'node:net';
import * as z from 'zod/mini';
import { bool, csvOf } from '../fields.js';
import { dnsNameProblem } from '../names.js';
import type { ConfigParts } from '../parts.js';
import { settingBounds } from '../setting-doc.js';

const COMPOSE_PROJECT = /^[a-z0-9][a-z0-9_-]{0,127}$/;

/**
 * The central variables of the `deploy` group: which containers or services get the certificates, and how; each deploy mode brings its own variables.
 * Built when the configuration is read (envSchema in ../schema.ts), not kept.
 */
export const deployEnv = (parts: ConfigParts) => ({
  /**
   * `false` publishes without reloading any container.
   * @group deploy
   * @default true
   */
  DOCKER_RELOAD: z._default(bool, true),
  /**
   * How the published certificates reach the servers (see [reload and
   * verify](reload-and-verify.md) and [Swarm](swarm.md)). With `swarm`, `DOCKER_SCOPE` is a stack name.
   * @group deploy
   * @default volume
   */
  DEPLOY_MODE: z._default(
    z
      .enum(parts.modes.map((m) => m.name) as [string, ...string[]], {
        error: () => `use ${parts.modes.map((m) => `${m.name} (${m.summary})`).join(' or ')}`,
      })
      .register(settingBounds, { values: parts.modes.map((m) => `\`${m.name}\` (${m.summary})`).join(', ') }),
    parts.modes[0]!.name,
  ),
  // Each deploy mode's own variables (deploy/modes/<name>/index.ts).
  ...(Object.assign({}, ...parts.modes.map((m) => m.env ?? {})) as Record<string, z.ZodMiniType>),
  /**
   * The compose project whose labelled containers mailcerts reloads and verifies. Found from mailcerts' own
   * container when it runs in one; **required** when it does not. `*` trusts every labelled container on the host,
   * with a warning.
   * @group deploy
   * @default mailcerts' own compose project
   * @values a compose project or stack name, or `*`
   */
  DOCKER_SCOPE: z.optional(
    z
      .string()
      .check(
        z.refine(
          (s) => s === '*' || COMPOSE_PROJECT.test(s),
          'use the compose project name of the mail stack (docker compose ls), or * for every labelled container on the host',
        ),
      ),
  ),
  /**
   * Hosts a `mailcerts.verify` label may name besides the container's own addresses, e.g. `mail.example.com`; `*`
   * for any.
   * @group deploy
   * @default none
   * @values addresses or host names, comma separated, or `*`
   */
  VERIFY_HOSTS: z.optional(
    csvOf((h) =>
      h !== '*' && isIP(h) === 0 && dnsNameProblem(h.toLowerCase()) && !/^[a-z0-9][a-z0-9_.-]*$/i.test(h)
        ? `"${h}" is neither an address nor a host name`
        : undefined,
    ),
  ),
});
