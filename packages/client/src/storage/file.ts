/**
 * Queue and replica storage in one file (Node): an append-only log of JSON lines, compacted by an atomic
 * rewrite. The first line names the format and its version; each later line is one atomic change (queued
 * mutations appended or removed, or one replica write: records and the cursors they cover together).
 * Changes that arrive while a write is in flight are written together next, in one `write` and one
 * `fdatasync`: an append resolves only once its line is on disk.
 *
 * A crash can leave only the last line torn; it is ignored on load (it was never acknowledged). A
 * damaged line anywhere else, or a file of an unknown format, is a STORAGE error and the file is left
 * alone: queued writes are never dropped silently. When the log has grown past twice its live content,
 * it is rewritten (temporary file, fsync, rename, directory fsync), so a crash leaves the old file or the
 * new one. Records are stored by collection in columns (ids, versions, seqs, data: one array each), the
 * quickest shape to parse (format version 3); a version 2 file (one array per record) or a version 1
 * file (one JSON document with the queue) is read and rewritten in this format at the next write.
 * One client at a time may use a file. Why a log and not SQLite: docs/decisions.md.
 *
 * Node modules are loaded lazily, so importing this module in a browser bundle does not fail.
 *
 * @example
 * const client = new SyncClient({ url, token, storage: new FileStorage('./data/syncbridge.json') });
 */
import { SyncClientError } from '../errors.ts';
import { splitFirstPage } from '../first-page.ts';
import {
  applyLine,
  encodeWrite,
  FORMAT,
  FORMAT_VERSION,
  type Header,
  LazyData,
  type LogLine,
} from './file-format.ts';
import { ReplicaTable } from './replica-table.ts';
import {
  type ClientStorage,
  type QueuedMutation,
  REPLICA_SCHEMA_VERSION,
  type ReplicaFirstPage,
  type ReplicaState,
  type ReplicaWrite,
  type StoredRecord,
} from './types.ts';

/** The log is compacted when it exceeds twice its live content, and at least this much. */
const COMPACT_MIN_BYTES = 4 * 1024 * 1024;

type FileHandle = Awaited<ReturnType<typeof import('node:fs/promises').open>>;
type Waiter = { resolve: () => void; reject: (err: unknown) => void };

export class FileStorage implements ClientStorage {
  private readonly queue = new Map<string, QueuedMutation>();
  private readonly replica = new ReplicaTable();
  /** The records' data not parsed yet (see file-format.ts): parsed before the replica is used. */
  private readonly lazy = new LazyData((message) =>
    this.error(`the client storage ${this.path} is ${message}`),
  );
  private loaded: Promise<void> | null = null;
  private handle: FileHandle | null = null;
  private pendingLines: string[] = [];
  private waiters: Waiter[] = [];
  private writing: Promise<void> | null = null;
  private fileBytes = 0;
  private liveBytes = 0;
  /** Rewrite the file at the next write: it is in an older format, or ends with a torn line. */
  private rewriteNeeded = false;

  constructor(readonly path: string) {}

  async load(): Promise<QueuedMutation[]> {
    await this.open();
    return [...this.queue.values()];
  }

  async append(entries: QueuedMutation[]): Promise<void> {
    await this.open();
    for (const entry of entries) this.queue.set(entry.mid, entry);
    return this.log({ q: entries });
  }

  async remove(mids: string[]): Promise<void> {
    await this.open();
    const gone = mids.filter((mid) => this.queue.delete(mid));
    if (gone.length > 0) return this.log({ d: gone });
  }

  async loadReplica(scope: string): Promise<ReplicaState> {
    await this.useScope(scope);
    this.lazy.parseAll();
    return this.replica.state();
  }

  /** The replica with each collection's first `size` records (in id order) parsed, the rest on demand. */
  async loadReplicaFirstPage(scope: string, size: number): Promise<ReplicaFirstPage> {
    await this.useScope(scope);
    const keep = new Map<string, Set<string>>();
    for (const { mutation } of this.queue.values()) {
      const ids = keep.get(mutation.collection) ?? new Set<string>();
      keep.set(mutation.collection, ids);
      ids.add(mutation.id);
    }
    const page: StoredRecord[] = [];
    const rest: StoredRecord[] = [];
    for (const [collection, ids] of this.replica.records) {
      const split = splitFirstPage([...ids.values()], size, keep.get(collection) ?? new Set());
      for (const record of split.page) page.push(record);
      for (const record of split.rest) rest.push(record);
    }
    this.lazy.parse(new Set(page));
    return {
      state: { records: page, channels: [...this.replica.channels.values()] },
      rest: () => {
        this.lazy.parseAll();
        return rest;
      },
    };
  }

  private async useScope(scope: string): Promise<void> {
    await this.open();
    if (this.replica.scope !== scope) {
      this.replica.useScope(scope);
      this.lazy.clear();
      await this.log({ scope });
    }
  }

  async writeReplica(scope: string, write: ReplicaWrite): Promise<void> {
    await this.open();
    if (this.replica.scope !== scope) return;
    this.replica.apply(write);
    return this.logText(encodeWrite(write));
  }

  /** Resolves once pending writes are on disk, and closes the file. */
  async close(): Promise<void> {
    while (this.writing) await this.writing;
    const handle = this.handle;
    this.handle = null;
    await handle?.close();
  }

  private open(): Promise<void> {
    this.loaded ??= this.read();
    return this.loaded;
  }

  private async read(): Promise<void> {
    const { readFile } = await import('node:fs/promises');
    let bytes: Buffer;
    try {
      // One buffer decoded once: reading with an encoding decodes in chunks, and measuring the
      // string's UTF-8 length afterwards walks 100,000 records' worth of text a second time.
      bytes = await readFile(this.path);
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') {
        this.rewriteNeeded = true;
        return;
      }
      throw this.error(`cannot read the client storage ${this.path}: ${(err as Error).message}`);
    }
    this.fileBytes = bytes.length;
    const text = bytes.toString('utf8');
    if (text.trim() === '') {
      this.rewriteNeeded = true;
      return;
    }
    if (text.trimStart().startsWith('{"version":1')) return this.readVersion1(text);
    const lines = text.split('\n');
    const header = this.parseLine(lines[0]!, 1) as Partial<Header>;
    if (header.format !== FORMAT || typeof header.version !== 'number') {
      throw this.error(`the client storage ${this.path} has an unknown format`);
    }
    if (header.version > FORMAT_VERSION) {
      throw this.error(
        `the client storage ${this.path} has format version ${header.version}, newer than this SDK reads (${FORMAT_VERSION})`,
      );
    }
    const keepReplica = header.replicaSchema === REPLICA_SCHEMA_VERSION;
    // An older format, or a replica of another schema: the next write rewrites the file in this one.
    if (!keepReplica || header.version < FORMAT_VERSION) this.rewriteNeeded = true;
    // A last line without its newline was never acknowledged (a crash mid-append): it is left out.
    const last = text.endsWith('\n') ? lines.length - 1 : lines.length - 2;
    if (last < lines.length - 1 && lines[lines.length - 1] !== '') this.rewriteNeeded = true;
    for (let i = 1; i <= last; i++) {
      const raw = lines[i]!;
      if (raw === '') continue;
      // A replica line's data follows a tab, parsed when the records are used (file-format.ts).
      const tab = raw.indexOf('\t');
      let line: LogLine;
      try {
        line = JSON.parse(tab < 0 ? raw : raw.slice(0, tab)) as LogLine;
      } catch (err) {
        throw this.error(
          `the client storage ${this.path} is damaged at line ${i + 1}: ${(err as Error).message}`,
        );
      }
      this.replay(line, keepReplica, tab < 0 ? null : raw.slice(tab + 1), i + 1);
    }
    this.liveBytes = this.fileBytes;
  }

  private readVersion1(text: string): void {
    let parsed: { version?: number; entries?: QueuedMutation[] };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch (err) {
      throw this.error(`the offline queue ${this.path} is not valid JSON: ${(err as Error).message}`);
    }
    if (parsed.version !== 1 || !Array.isArray(parsed.entries)) {
      throw this.error(`the offline queue ${this.path} has an unknown format`);
    }
    for (const entry of parsed.entries) this.queue.set(entry.mid, entry);
    this.rewriteNeeded = true;
  }

  private parseLine(raw: string, number: number): unknown {
    try {
      return JSON.parse(raw);
    } catch (err) {
      throw this.error(
        `the client storage ${this.path} is damaged at line ${number}: ${(err as Error).message}`,
      );
    }
  }

  private replay(line: LogLine, keepReplica: boolean, data: string | null, lineNumber: number): void {
    if ('q' in line) for (const entry of line.q) this.queue.set(entry.mid, entry);
    else if ('d' in line) for (const mid of line.d) this.queue.delete(mid);
    else if (!keepReplica) return;
    else if ('scope' in line) {
      // Another scope's records are wiped: their data is never needed.
      if (this.replica.scope !== line.scope) this.lazy.clear();
      this.replica.useScope(line.scope);
    } else applyLine(this.replica, line, data, this.lazy, lineNumber);
  }

  private log(line: LogLine): Promise<void> {
    return this.logText(JSON.stringify(line));
  }

  private logText(text: string): Promise<void> {
    this.pendingLines.push(text);
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.writing ??= this.writeLoop().finally(() => {
        this.writing = null;
      });
    });
  }

  private async writeLoop(): Promise<void> {
    while (this.waiters.length > 0) {
      const waiters = this.waiters;
      const lines = this.pendingLines;
      this.waiters = [];
      this.pendingLines = [];
      try {
        if (this.rewriteNeeded || this.fileBytes > Math.max(COMPACT_MIN_BYTES, 2 * this.liveBytes)) {
          await this.rewrite();
        } else {
          const text = `${lines.join('\n')}\n`;
          const handle = await this.appendHandle();
          await handle.write(text);
          await handle.datasync();
          this.fileBytes += Buffer.byteLength(text);
        }
        for (const w of waiters) w.resolve();
      } catch (err) {
        const error = this.error(`cannot write the client storage ${this.path}: ${(err as Error).message}`);
        for (const w of waiters) w.reject(error);
      }
    }
  }

  private async appendHandle(): Promise<FileHandle> {
    if (!this.handle) {
      const { open } = await import('node:fs/promises');
      this.handle = await open(this.path, 'a');
    }
    return this.handle;
  }

  /** Writes the live content as a fresh log, atomically. */
  private async rewrite(): Promise<void> {
    const header: Header = { format: FORMAT, version: FORMAT_VERSION, replicaSchema: REPLICA_SCHEMA_VERSION };
    const parts = [JSON.stringify(header)];
    if (this.queue.size > 0) parts.push(JSON.stringify({ q: [...this.queue.values()] } satisfies LogLine));
    if (this.replica.scope !== null) {
      parts.push(JSON.stringify({ scope: this.replica.scope } satisfies LogLine));
      this.lazy.parseAll();
      const { records, channels } = this.replica.state();
      // Records in lines of a few thousand, then the cursors: one huge line would need one huge string.
      for (let i = 0; i < records.length; i += 5000) {
        parts.push(
          encodeWrite({ records: records.slice(i, i + 5000), forget: [], channels: [], dropChannels: [] }),
        );
      }
      if (channels.length > 0) {
        parts.push(encodeWrite({ records: [], forget: [], channels, dropChannels: [] }));
      }
    }
    const text = `${parts.join('\n')}\n`;
    const handle = this.handle;
    this.handle = null;
    await handle?.close();
    await writeAtomically(this.path, text);
    this.fileBytes = Buffer.byteLength(text);
    this.liveBytes = this.fileBytes;
    this.rewriteNeeded = false;
  }

  private error(message: string): SyncClientError {
    return new SyncClientError('STORAGE', message);
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
