/**
 * Lifetime of a benchmark process: everything it starts (server processes, temp dirs, PostgreSQL
 * schemas) registers a cleanup here, which runs on normal exit, on an error, on Ctrl-C and when the
 * benchmark's time limit expires. A benchmark never outlives its limit and never leaves a child behind.
 */

interface Cleanup {
  /** Orderly cleanup (stop the server, drop the schema). */
  run: () => Promise<void>;
  /** Last-resort cleanup from the 'exit' handler, where nothing asynchronous can run. */
  runSync: () => void;
}

const cleanups = new Set<Cleanup>();

/** Registers a cleanup; returns a function that unregisters it (after the caller cleaned up itself). */
export function onCleanup(cleanup: Cleanup): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

let cleaning: Promise<void> | null = null;

/** Runs every cleanup once, newest first; concurrent callers share the same run. */
export function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    for (const c of [...cleanups].reverse()) {
      try {
        await c.run();
      } catch (err) {
        process.stderr.write(`cleanup failed: ${(err as Error).message}\n`);
        c.runSync();
      }
      cleanups.delete(c);
    }
  })();
  return cleaning;
}

/**
 * Runs a benchmark's main function with exit handlers and a time limit, then exits: open sockets of
 * the load generator must not keep the process alive.
 */
export function runMain(main: () => Promise<void>, limitSeconds: number): void {
  process.on('exit', () => {
    for (const c of cleanups) c.runSync();
  });
  let aborted = false;
  const abort = (why: string, code: number) => {
    if (aborted) return;
    aborted = true;
    process.stderr.write(`\n${why}: stopping\n`);
    process.exitCode = code;
    void cleanupAll().finally(() => process.exit());
  };
  process.once('SIGINT', () => abort('interrupted', 130));
  process.once('SIGTERM', () => abort('terminated', 143));
  setTimeout(() => abort(`time limit of ${limitSeconds} s reached`, 2), limitSeconds * 1000).unref();
  main()
    .then(
      () => cleanupAll(),
      async (err: unknown) => {
        // After an abort, main fails because its servers went away: that is not worth a stack trace.
        if (!aborted) {
          process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
          process.exitCode = 1;
        }
        await cleanupAll();
      },
    )
    .finally(() => process.exit());
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
