/** "host:port", "[v6]:port", or a bare host with the default port; undefined when malformed. */
export function splitHostPort(s: string, defaultPort?: number): { host: string; port: number } | undefined {
  const m =
    s.match(/^\[([^\]]+)\]:(\d{1,5})$/) ??
    s.match(/^([^:]+):(\d{1,5})$/) ??
    (defaultPort !== undefined ? [s, s.replace(/^\[|\]$/g, ''), String(defaultPort)] : null);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (!(port >= 1 && port <= 65535)) return undefined;
  return { host: m[1]!, port };
}
