import { stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { suppliedSourceOf } from '../obtain/sources/index.js';

/** How long both files must be left alone before they are read (a slow writer, a copy in chunks). */
export const SETTLE_MS = 1_500;

/** What the supplied certificates' sources ask to be watched (obtain/sources/<name>/index.ts). */
function watchedOf(config: Config) {
  const dirs: { name: string; dir: string; files: readonly string[] }[] = [];
  const files: { name: string; file: string; what: string }[] = [];
  for (const spec of config.certificates) {
    const watched = suppliedSourceOf(spec)?.watch(spec);
    if (watched && 'dir' in watched) dirs.push({ name: spec.name, ...watched });
    else if (watched) files.push({ name: spec.name, ...watched });
  }
  return { dirs, files };
}

type Watched = ReturnType<typeof watchedOf>;
type Watch = typeof import('chokidar')['watch'];
/** One watcher and the timers of the changes it is letting settle. */
interface Part {
  watcher?: ReturnType<Watch>;
  timers: Map<string, NodeJS.Timeout>;
}

/**
 * Watches what the supplied certificates come from, and calls onSettled(certificate name) once a
 * change has settled: folders where files are dropped (CUSTOM_CERTS_DIR), files rewritten in place
 * (Traefik's acme.json). Returns undefined when nothing is supplied; chokidar is loaded only then
 * (a daemon that watches nothing keeps its half a megabyte).
 */
export async function watchSupplied(
  config: Config,
  onSettled: (name: string) => void,
  log: Logger,
): Promise<{ close(): Promise<void> } | undefined> {
  const { dirs, files } = watchedOf(config);
  if (dirs.length === 0 && files.length === 0) return undefined;
  const { watch } = await import('chokidar');
  const inFiles = watchFiles(watch, files, onSettled, log);
  const inDirs = watchDirs(watch, dirs, onSettled, log);
  return {
    async close() {
      for (const t of [...inDirs.timers.values(), ...inFiles.timers.values()]) clearTimeout(t);
      await inDirs.watcher?.close();
      await inFiles.watcher?.close();
    },
  };
}

/** Files rewritten in place (Traefik's acme.json): every certificate taken from one is looked at again. */
function watchFiles(watch: Watch, files: Watched['files'], onSettled: (name: string) => void, log: Logger): Part {
  const timers = new Map<string, NodeJS.Timeout>();
  const watchedFiles = [...new Set(files.map((c) => c.file))];
  if (watchedFiles.length === 0) return { timers };
  const fileChanged = (file: string) => {
    clearTimeout(timers.get(file));
    timers.set(
      file,
      setTimeout(() => {
        timers.delete(file);
        const of = files.filter((x) => x.file === file);
        log.info({ step: 'watch', file }, `${of[0]?.what ?? file} changed`);
        for (const c of of) onSettled(c.name);
      }, SETTLE_MS),
    );
  };
  const watcher = watch(watchedFiles, {
    ignoreInitial: true,
    awaitWriteFinish: { stabilityThreshold: SETTLE_MS, pollInterval: 100 },
  });
  watcher.on('all', (_event, path) => fileChanged(path));
  const whats = [...new Set(files.map((c) => c.what))].join(' and ');
  watcher.on('error', (err) => log.error({ step: 'watch', error: String(err) }, `watching ${whats} failed`));
  log.info({ step: 'watch', files: watchedFiles }, `watching ${whats}`);
  return { watcher, timers };
}

/** Folders where a certificate's files are dropped (CUSTOM_CERTS_DIR): read once both have settled. */
function watchDirs(watch: Watch, dirs: Watched['dirs'], onSettled: (name: string) => void, log: Logger): Part {
  const timers = new Map<string, NodeJS.Timeout>();
  if (dirs.length === 0) return { timers };
  const settleThenRun = (name: string, dir: string, names: readonly string[]) => {
    clearTimeout(timers.get(name));
    timers.set(
      name,
      setTimeout(async () => {
        timers.delete(name);
        const times = await Promise.all(
          names.map((f) =>
            stat(join(dir, f)).then(
              (s) => s.mtimeMs,
              () => 0,
            ),
          ),
        );
        const quietFor = Date.now() - Math.max(...times);
        if (quietFor < SETTLE_MS) return settleThenRun(name, dir, names); // the other file is still being written
        log.info({ step: 'watch', cert: name }, 'supplied files changed and settled');
        onSettled(name);
      }, SETTLE_MS),
    );
  };
  const allNames = new Set(dirs.flatMap((d) => d.files));
  const watcher = watch([...new Set(dirs.map((c) => c.dir))], {
    ignoreInitial: true,
    depth: 1,
    awaitWriteFinish: { stabilityThreshold: SETTLE_MS, pollInterval: 100 },
    ignored: (path, st) => (st?.isFile() ?? false) && !allNames.has(basename(path)),
  });
  watcher.on('all', (_event, path) => {
    const watched = dirs.find((c) => c.dir === dirname(path));
    if (watched?.files.includes(basename(path))) settleThenRun(watched.name, watched.dir, watched.files);
  });
  watcher.on('error', (err) =>
    log.error({ step: 'watch', error: String(err) }, 'watching the supplied certificates failed'),
  );
  log.info({ step: 'watch', dirs: [...new Set(dirs.map((c) => c.dir))] }, 'watching for supplied certificates');
  return { watcher, timers };
}
