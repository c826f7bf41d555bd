export function unboundMissing(): string | undefined;
export interface Unbound {
  address: string;
  dig(name: string, type: string): string;
  stop(): Promise<void>;
}
export function startUnbound(opts: {
  dir: string;
  address: string;
  zone: string;
  trustAnchor: string;
  stub: string;
}): Promise<Unbound>;
