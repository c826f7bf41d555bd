import { createServer, request } from 'node:http';
import { TEST_MARKER } from './mailstack.js';

/**
 * The host's Docker API as this test run sees it: container lists hold this run's containers only
 * (the label TEST_MARKER is added to every list's filters); every other call passes as it is.
 * For DOCKER_SCOPE=*, which trusts every labelled container on the host: pointed at this, mailcerts
 * acts on all of this run's containers, whatever their compose project, and never on those of a
 * run side by side (another clone of the repo).
 */
export async function startRunDockerProxy(): Promise<{ host: string; stop(): Promise<void> }> {
  const docker = process.env.DOCKER_HOST?.startsWith('unix://')
    ? process.env.DOCKER_HOST.slice('unix://'.length)
    : '/var/run/docker.sock';
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://docker');
    if (req.method === 'GET' && /^(\/v[0-9.]+)?\/containers\/json$/.test(url.pathname)) {
      const filters = JSON.parse(url.searchParams.get('filters') ?? '{}') as Record<
        string,
        string[] | Record<string, boolean>
      >;
      const label = filters.label ?? [];
      filters.label = Array.isArray(label) ? [...label, TEST_MARKER] : { ...label, [TEST_MARKER]: true };
      url.searchParams.set('filters', JSON.stringify(filters));
    }
    const upstream = request(
      { socketPath: docker, method: req.method, path: url.pathname + url.search, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', (err) => res.destroy(err));
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    host: `tcp://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
