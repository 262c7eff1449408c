/**
 * The SQLite log commit off the event loop: a worker thread (commit-worker-source.ts) with its own write
 * connection to the database file makes each group of commits durable while the main thread goes on
 * serving clients and computing the next group. A commit reaches it already computed against the
 * state this node remembers (store/postgres/one-call-commit.ts, the seam PostgreSQL's one-call commit
 * uses), as statements and the checks they depend on (commit-ops.ts).
 *
 * Commits that arrive while the thread is busy wait and go together in the next message, one
 * transaction and one fsync for all of them, whatever their tenants (the single writer's group commit).
 * Each message runs in the store's writer queue, so the main thread's own write connection never
 * starts a transaction while the thread holds SQLite's write lock, nor the thread while it does.
 *
 * It must never: answer a commit before the thread answered it after COMMIT, leave a caller waiting
 * when the thread dies (every commit in flight or queued is failed with UNAVAILABLE and logged, and the
 * next commit starts a new thread), or send the thread anything but statement names and parameters.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { SyncError } from '@syncbridge/protocol';
import type { Logger } from 'pino';
import type { CommitReads, OneCall } from '../postgres/one-call-commit.ts';
import { type RecordRow, recordFromRow } from '../rows.ts';
import { type RecordKey, recordKey, type VersionKey, versionKey } from '../types.ts';
import { batchOps, COMMIT_SQL, type CommitCheck, type CommitOp, commitChecks } from './commit-ops.ts';
import { COMMIT_WORKER_SOURCE } from './commit-worker-source.ts';
import { connectionPragmas } from './connection.ts';
import type { Statement } from './statements.ts';

export interface CommitThreadOptions {
  file: string;
  synchronous: string;
  busyTimeoutMs?: number;
  maxPageCount?: number;
  /** The store's writer queue: runs fn when no other write of this process is in progress. */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** Hears that the thread stopped (one line per stop). */
  logger?: Logger;
}

type Outcome = 'committed' | 'moved';
type Answer = Outcome | { error: WorkerError };
interface WorkerError {
  message: string;
  code?: string;
}

interface Queued {
  /** `[checks, ops]` as JSON: one string crosses to the thread (a structured clone of the nested arrays cost more on both threads). */
  text: string;
  resolve(outcome: Outcome): void;
  reject(err: unknown): void;
}

interface InFlight {
  id: number;
  resolve(answers: Answer[]): void;
  reject(err: unknown): void;
}

/** The checks' statements answer one value each (the thread plucks them). */
const CHECKS = ['headIs', 'lastIs', 'resultStored', 'recordVersion'];

/** A driver error as the thread reported it, with its SQLite code (errors.ts translates it). */
function driverError(e: WorkerError): Error {
  return Object.assign(new Error(e.message), e.code ? { code: e.code } : {});
}

export class CommitThread {
  private worker: Worker | null = null;
  private queued: Queued[] = [];
  private inFlight: InFlight | null = null;
  /** Settles when the queue is empty and nothing is in flight. */
  private sending: Promise<void> | null = null;
  private nextId = 1;
  private closed = false;

  constructor(private readonly options: CommitThreadOptions) {}

  /** Makes one computed commit durable, or answers 'moved' when what it assumed no longer holds. */
  commit(call: OneCall): Promise<Outcome> {
    if (this.closed) return Promise.reject(new SyncError('UNAVAILABLE', 'the store is closed'));
    const commit: [CommitCheck[], CommitOp[]] = [commitChecks(call), batchOps(call.tenant, call.batch)];
    const text = JSON.stringify(commit);
    return new Promise((resolve, reject) => {
      this.queued.push({ text, resolve, reject });
      // The rest of this turn's commits (other tenants') join the first message.
      this.sending ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.sendAll());
    });
  }

  /** Waits for the commits queued so far, then stops the thread. */
  async close(): Promise<void> {
    this.closed = true;
    await this.sending;
    const worker = this.worker;
    this.worker = null;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ type: 'close' });
    const timer = setTimeout(() => void worker.terminate(), 5000);
    await exited;
    clearTimeout(timer);
  }

  private async sendAll(): Promise<void> {
    try {
      while (this.queued.length > 0) {
        let group: Queued[] = [];
        try {
          // Taken once the writer queue is free: whatever queued while waiting joins this message.
          const answers = await this.options.exclusive(() => {
            group = this.queued.splice(0);
            return this.roundTrip(group);
          });
          group.forEach((q, i) => {
            const answer = answers[i]!;
            if (typeof answer === 'string') q.resolve(answer);
            else q.reject(driverError(answer.error));
          });
        } catch (err) {
          for (const q of group) q.reject(err);
        }
      }
    } finally {
      this.sending = null;
    }
  }

  private roundTrip(group: Queued[]): Promise<Answer[]> {
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise<Answer[]>((resolve, reject) => {
      this.inFlight = { id, resolve, reject };
      worker.ref();
      worker.postMessage({ id, commits: `[${group.map((q) => q.text).join(',')}]` });
    }).finally(() => {
      this.inFlight = null;
      if (this.worker === worker) worker.unref();
    });
  }

  private start(): Worker {
    const { file, synchronous, busyTimeoutMs, maxPageCount } = this.options;
    const pragmas = connectionPragmas(synchronous, busyTimeoutMs);
    if (maxPageCount !== undefined) pragmas.push(`max_page_count = ${Math.max(1, Math.floor(maxPageCount))}`);
    const worker = new Worker(COMMIT_WORKER_SOURCE, {
      eval: true,
      // Plain JavaScript: no loader (`--import tsx` would cost the thread a second of CPU to start);
      // a CPU profile of the process profiles the thread too.
      execArgv: process.execArgv.filter((arg) => arg.startsWith('--cpu-prof')),
      workerData: {
        driver: createRequire(import.meta.url).resolve('better-sqlite3'),
        file,
        pragmas,
        statements: COMMIT_SQL,
        checks: CHECKS,
      },
    });
    worker.unref();
    worker.on('message', (message: { id?: number; outcomes?: Answer[]; error?: WorkerError }) => {
      const inFlight = this.inFlight;
      if (message.id === undefined || !inFlight || inFlight.id !== message.id) return;
      if (message.outcomes) inFlight.resolve(message.outcomes);
      else inFlight.reject(driverError(message.error ?? { message: 'no answer' }));
    });
    worker.on('error', (err) => this.stopped(worker, err));
    worker.on('exit', (code) => this.stopped(worker, new Error(`the thread exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  /** The thread died: whatever it was committing is failed (it may or may not have committed). */
  private stopped(worker: Worker, cause: Error): void {
    if (this.worker !== worker) return;
    this.worker = null;
    const inFlight = this.inFlight;
    this.options.logger?.error(
      { err: cause, file: this.options.file, inFlight: inFlight !== null },
      'the SQLite commit thread stopped; commits in flight failed with UNAVAILABLE, the next one starts a new thread',
    );
    inFlight?.reject(
      Object.assign(
        new SyncError(
          'UNAVAILABLE',
          'the write may or may not have been committed (the commit thread stopped); retry with the same mid',
        ),
        { cause },
      ),
    );
  }
}

/** A log entry's data as stored: full, or packed by history compaction (store/history). */
export interface StoredVersionRow {
  seq: number;
  data: string | null;
  packed: Buffer | null;
}
type VersionDataStatement = Statement<[string, string, string, number], StoredVersionRow>;
/** Rebuilds an entry's data (compacted entries are unpacked). */
export type VersionDataOf = (
  tenant: string,
  collection: string,
  id: string,
  row: StoredVersionRow,
) => Promise<Record<string, unknown>>;

/** The data each record had at the given versions, from its log entries. */
export async function readVersionData(
  statement: VersionDataStatement,
  tenant: string,
  keys: VersionKey[],
  dataOf: VersionDataOf,
): Promise<Map<string, Record<string, unknown>>> {
  const found = new Map<string, Record<string, unknown>>();
  for (const { collection, id, version } of keys) {
    const row = statement.get(tenant, collection, id, version);
    if (row) found.set(versionKey(collection, id, version), await dataOf(tenant, collection, id, row));
  }
  return found;
}

/**
 * What a commit computed ahead of its transaction reads, on the reader connection: records (their
 * versions are checked under the lock) and records' data at a version (never changes once committed).
 */
export function readerCommitReads(
  statements: {
    getRecord: Statement<[string, string, string], RecordRow>;
    versionDataR: VersionDataStatement;
  },
  dataOf: VersionDataOf,
): CommitReads {
  return {
    getRecords: async (tenant: string, keys: RecordKey[]) => {
      const found = new Map<string, ReturnType<typeof recordFromRow>>();
      for (const { collection, id } of keys) {
        const row = statements.getRecord.get(tenant, collection, id);
        if (row) found.set(recordKey(collection, id), recordFromRow(row));
      }
      return found;
    },
    getVersionData: (tenant, keys) => readVersionData(statements.versionDataR, tenant, keys, dataOf),
  };
}
