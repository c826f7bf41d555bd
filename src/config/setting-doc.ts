import * as z from 'zod/mini';

/*
 * How settings are documented. Each variable's description, default and allowed values are a JSDoc
 * comment on its definition (`@group`, `@default`, `@values`): scripts/config-docs.mjs reads them
 * with the TypeScript parser and renders docs/configuration.md, and test/unit/docs.test.ts fails
 * when a variable has none. Comments cost the daemon nothing (the bundle drops them).
 */

/**
 * What the schema itself knows of a setting's bounds, attached by the helpers that check them
 * (durations, whole numbers), so that the page shows the numbers the check uses. A WeakMap: the
 * schemas built for one load still go away.
 */
export const settingBounds = z.registry<{ values: string }>();

/** A variable read outside the configuration schema, documented where its reader is named. */
export interface OtherSetting {
  readBy: string;
  group: string;
  default: string;
  description: string;
}

/**
 * Variables read outside the configuration schema. The docs test fails when src/ reads a
 * variable that is neither in a schema nor listed here.
 */
export const OTHER_SETTINGS: Record<string, OtherSetting> = {
  DOCKER_HOST: {
    readBy: 'src/deploy/docker.ts',
    group: 'deploy',
    default: '`unix:///var/run/docker.sock`',
    description:
      "The Docker API: a unix socket, or `tcp://socket-proxy:2375` (the socket proxy, as in the compose example). Docker's own variable.",
  },
  MAILCERTS_TASK_ID: {
    readBy: 'src/deploy/swarm/self.ts',
    group: 'deploy',
    default: 'none',
    description:
      'Swarm only: `"{{.Task.ID}}"` in the stack file tells mailcerts which task it is, cluster-wide: with several managers its proxy often runs on another one, whose engine does not list mailcerts\' container. Inside a container without it (or naming a task that is not this container\'s) it stays passive and logs what to set.',
  },
  NODE_EXTRA_CA_CERTS: {
    readBy: 'Node itself',
    group: 'ca',
    default: 'none',
    description:
      "Node's standard variable: trusts a private ACME CA's TLS certificate (the tests trust Pebble this way). The Traefik source trusts the roots in it too.",
  },
};
