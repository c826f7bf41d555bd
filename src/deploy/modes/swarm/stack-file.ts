import type { FileRef, ServiceView } from './api.js';

/** The stack label Swarm puts on every service of a docker stack deploy. */
export const STACK_LABEL = 'com.docker.stack.namespace';

/**
 * A compose file to pass after the stack's own (docker stack deploy -c stack.yml -c this): it names
 * the secrets and configs that mailcerts mounts in each labelled service now, as external objects.
 * docker stack deploy replaces a service's secrets and configs with the stack file's; with this
 * one merged in, the mail services keep their certificate files. The names change with each
 * certificate, so it is made again before each deploy. JSON values are YAML.
 */
export function stackFile(
  services: ServiceView[],
  own: Set<string>,
  at: Date,
  scope: string,
  composeVersion?: string,
): string {
  const lines = [
    `# made by mailcerts stack-file at ${at.toISOString()} for the stack ${scope}: the certificate files each service mounts now.`,
    '# Made again before each docker stack deploy (the names change with each certificate):',
    '#   docker stack deploy -c stack.yml -c mailcerts.yml STACK',
  ];
  // docker stack deploy refuses files whose version: lines differ (none counts as the newest 3.x).
  if (composeVersion) lines.push(`version: ${JSON.stringify(composeVersion)}`);
  const secrets = new Set<string>();
  const configs = new Set<string>();
  const entries: string[] = [];
  // Only the stack's own services: another stack's, or one outside any stack, would be created by the deploy.
  for (const s of [...services]
    .filter((x) => x.Spec.Labels?.[STACK_LABEL] === scope)
    .sort((a, b) => (a.Spec.Name ?? '').localeCompare(b.Spec.Name ?? ''))) {
    const full = s.Spec.Name ?? s.ID;
    // Inside the stack file a service is named without its stack's prefix.
    const name = full.startsWith(`${scope}_`) ? full.slice(scope.length + 1) : full;
    const cs = s.Spec.TaskTemplate?.ContainerSpec ?? {};
    const ours = (r: FileRef) => own.has(r.SecretID ?? r.ConfigID ?? '');
    const item = (source: string, r: FileRef) =>
      `      - ${JSON.stringify({ source, target: r.File?.Name, uid: r.File?.UID, gid: r.File?.GID, mode: r.File?.Mode })}`;
    const ss = (cs.Secrets ?? []).filter(ours);
    const cc = (cs.Configs ?? []).filter(ours);
    if (ss.length + cc.length === 0) {
      entries.push(`  # ${name}: mounts no certificate file of mailcerts yet`);
      continue;
    }
    entries.push(`  ${JSON.stringify(name)}:`);
    for (const r of ss) secrets.add(r.SecretName!);
    for (const r of cc) configs.add(r.ConfigName!);
    if (ss.length > 0) entries.push('    secrets:', ...ss.map((r) => item(r.SecretName!, r)));
    if (cc.length > 0) entries.push('    configs:', ...cc.map((r) => item(r.ConfigName!, r)));
  }
  lines.push(entries.some((e) => !e.startsWith('  #')) ? 'services:' : 'services: {}', ...entries);
  const external = (kind: string, names: Set<string>) =>
    names.size === 0
      ? []
      : [`${kind}:`, ...[...names].sort().map((n) => `  ${JSON.stringify(n)}: { "external": true }`)];
  lines.push(...external('secrets', secrets), ...external('configs', configs));
  return `${lines.join('\n')}\n`;
}
