import type { AriState } from '../state/cert-state.js';

/** Picks a moment in the window; keeps the earlier pick while the window is unchanged. */
export function pickInWindow(
  window: { start: Date; end: Date },
  previous: AriState | undefined,
  random = Math.random,
): { selected: Date; moved: boolean } {
  const same = previous && previous.start === window.start.toISOString() && previous.end === window.end.toISOString();
  if (same) return { selected: new Date(previous.selected), moved: false };
  const span = Math.max(0, window.end.getTime() - window.start.getTime());
  return { selected: new Date(window.start.getTime() + Math.floor(random() * span)), moved: previous !== undefined };
}

/** Less than a tenth of the lifetime left: renew whatever any window says. */
export function emergency(notBefore: Date, notAfter: Date, now: Date): boolean {
  return notAfter.getTime() - now.getTime() < (notAfter.getTime() - notBefore.getTime()) / 10;
}
