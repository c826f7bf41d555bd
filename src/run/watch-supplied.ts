import { stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';

const FILES = ['fullchain.pem', 'privkey.pem'];
/** How long both files must be left alone before they are read (a slow writer, a copy in chunks). */
export const SETTLE_MS = 1_500;

/**
 * Watches CUSTOM_CERTS_DIR and calls onSettled(certificate name) once the dropped files have
 * settled. Returns undefined when no certificate is supplied by the user; chokidar is loaded only
 * then (a daemon that watches nothing keeps its half a megabyte).
 */
export async function watchSupplied(
  config: Config,
  onSettled: (name: string) => void,
  log: Logger,
): Promise<{ close(): Promise<void> } | undefined> {
  const supplied = config.certificates.filter((c) => c.source === 'custom' && c.customDir);
  // Traefik's acme.json: rewritten in place when Traefik renews; every certificate taken from it.
  const fromTraefik = config.certificates.filter((c) => c.source === 'traefik' && c.traefik);
  if (supplied.length === 0 && fromTraefik.length === 0) return undefined;
  const { watch } = await import('chokidar');
  const timers = new Map<string, NodeJS.Timeout>();

  const settleThenRun = (name: string, dir: string) => {
    clearTimeout(timers.get(name));
    timers.set(
      name,
      setTimeout(async () => {
        timers.delete(name);
        const times = await Promise.all(
          FILES.map((f) =>
            stat(join(dir, f)).then(
              (s) => s.mtimeMs,
              () => 0,
            ),
          ),
        );
        const quietFor = Date.now() - Math.max(...times);
        if (quietFor < SETTLE_MS) return settleThenRun(name, dir); // the other file is still being written
        log.info({ step: 'watch', cert: name }, 'supplied files changed and settled');
        onSettled(name);
      }, SETTLE_MS),
    );
  };

  const traefikFiles = [...new Set(fromTraefik.map((c) => c.traefik!.file))];
  const traefikTimers = new Map<string, NodeJS.Timeout>();
  const traefikChanged = (file: string) => {
    clearTimeout(traefikTimers.get(file));
    traefikTimers.set(
      file,
      setTimeout(() => {
        traefikTimers.delete(file);
        log.info({ step: 'watch', file }, "Traefik's acme.json changed");
        for (const c of fromTraefik.filter((x) => x.traefik!.file === file)) onSettled(c.name);
      }, SETTLE_MS),
    );
  };
  const traefikWatcher =
    traefikFiles.length > 0
      ? watch(traefikFiles, {
          ignoreInitial: true,
          awaitWriteFinish: { stabilityThreshold: SETTLE_MS, pollInterval: 100 },
        })
      : undefined;
  traefikWatcher?.on('all', (_event, path) => traefikChanged(path));
  traefikWatcher?.on('error', (err) =>
    log.error({ step: 'watch', error: String(err) }, "watching Traefik's acme.json failed"),
  );
  if (traefikWatcher) log.info({ step: 'watch', files: traefikFiles }, "watching Traefik's acme.json");
  const watcher =
    supplied.length === 0
      ? undefined
      : watch([...new Set(supplied.map((c) => c.customDir!))], {
          ignoreInitial: true,
          depth: 1,
          awaitWriteFinish: { stabilityThreshold: SETTLE_MS, pollInterval: 100 },
          ignored: (path, st) => (st?.isFile() ?? false) && !FILES.includes(basename(path)),
        });
  watcher?.on('all', (_event, path) => {
    if (!FILES.includes(basename(path))) return;
    const spec = supplied.find((c) => c.customDir === dirname(path));
    if (spec) settleThenRun(spec.name, spec.customDir!);
  });
  watcher?.on('error', (err) =>
    log.error({ step: 'watch', error: String(err) }, 'watching the supplied certificates failed'),
  );
  if (watcher)
    log.info(
      { step: 'watch', dirs: [...new Set(supplied.map((c) => c.customDir))] },
      'watching for supplied certificates',
    );
  return {
    async close() {
      for (const t of [...timers.values(), ...traefikTimers.values()]) clearTimeout(t);
      await watcher?.close();
      await traefikWatcher?.close();
    },
  };
}
