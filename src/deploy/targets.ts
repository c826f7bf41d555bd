import type { ContainerView } from './docker.js';
import { parseReloadLabel, RELOAD_LABEL, type ReloadAction } from './kinds/index.js';

/** A labelled container (or Swarm task) with its mailcerts.reload parsed by the kinds (deploy/kinds/). */
export interface ReloadTarget extends ContainerView {
  label: string;
  action: ReloadAction | { error: string };
}

export function asTarget(c: ContainerView): ReloadTarget {
  const label = c.labels[RELOAD_LABEL] ?? '';
  return { ...c, label, action: parseReloadLabel(label) };
}
