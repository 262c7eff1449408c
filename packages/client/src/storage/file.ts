/**
 * Queue storage in one JSON file (Node). Every change rewrites the file atomically: the new content is
 * written to a temporary file beside it, flushed to disk, and renamed over the old one, so a crash
 * leaves either the old queue or the new one, never half of each. Changes that arrive while a write is
 * in flight are folded into the next write. One client at a time may use a file.
 *
 * Node modules are loaded lazily, so importing this module in a browser bundle does not fail.
 *
 * @example
 * const client = new SyncClient({ url, token, storage: new FileStorage('./data/queue.json') });
 */
import { SyncClientError } from '../errors.ts';
import type { QueuedMutation, QueueStorage } from './types.ts';

interface FileFormat {
  version: 1;
  entries: QueuedMutation[];
}

type Waiter = { resolve: () => void; reject: (err: unknown) => void };

export class FileStorage implements QueueStorage {
  private entries: QueuedMutation[] = [];
  private loaded: Promise<void> | null = null;
  private waiters: Waiter[] = [];
  private writing = false;

  constructor(readonly path: string) {}

  load(): Promise<QueuedMutation[]> {
    this.loaded ??= this.read();
    return this.loaded.then(() => [...this.entries]);
  }

  async append(entries: QueuedMutation[]): Promise<void> {
    await this.load();
    this.entries.push(...entries);
    return this.persist();
  }

  async remove(mids: string[]): Promise<void> {
    await this.load();
    const gone = new Set(mids);
    this.entries = this.entries.filter((e) => !gone.has(e.mid));
    return this.persist();
  }

  /** Resolves once pending writes are on disk. */
  async close(): Promise<void> {
    if (this.writing)
      await new Promise<void>((resolve) => this.waiters.push({ resolve, reject: () => resolve() }));
  }

  private async read(): Promise<void> {
    const { readFile } = await import('node:fs/promises');
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return;
      throw new SyncClientError(
        'STORAGE',
        `cannot read the offline queue ${this.path}: ${(err as Error).message}`,
      );
    }
    let parsed: FileFormat;
    try {
      parsed = JSON.parse(text) as FileFormat;
    } catch (err) {
      // Never drop queued writes silently: a damaged file is the application's to look at.
      throw new SyncClientError(
        'STORAGE',
        `the offline queue ${this.path} is not valid JSON: ${(err as Error).message}`,
      );
    }
    if (parsed?.version !== 1 || !Array.isArray(parsed.entries)) {
      throw new SyncClientError('STORAGE', `the offline queue ${this.path} has an unknown format`);
    }
    this.entries = parsed.entries;
  }

  private persist(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      if (!this.writing) void this.writeLoop();
    });
  }

  private async writeLoop(): Promise<void> {
    this.writing = true;
    while (this.waiters.length > 0) {
      const batch = this.waiters;
      this.waiters = [];
      const content: FileFormat = { version: 1, entries: this.entries };
      try {
        await writeAtomically(this.path, JSON.stringify(content));
        for (const w of batch) w.resolve();
      } catch (err) {
        const error = new SyncClientError(
          'STORAGE',
          `cannot write the offline queue ${this.path}: ${(err as Error).message}`,
        );
        for (const w of batch) w.reject(error);
      }
    }
    this.writing = false;
  }
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const { mkdir, open, rename, rm } = await import('node:fs/promises');
  const { dirname } = await import('node:path');
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    const handle = await open(temp, 'w');
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    await syncDirectory(dirname(path));
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/** Makes a rename durable: on POSIX file systems the directory entry is on disk only once the directory is synced. */
async function syncDirectory(dir: string): Promise<void> {
  const { open } = await import('node:fs/promises');
  let handle: Awaited<ReturnType<typeof open>> | null = null;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Windows cannot open a directory; NTFS journals the rename itself.
  } finally {
    await handle?.close();
  }
}
