// The few parts of ShareDB's untyped packages that the benchmarks use.
declare module 'sharedb' {
  import type { Duplex } from 'node:stream';

  namespace ShareDB {
    class DB {}
    class MemoryDB extends DB {}
  }
  class ShareDB {
    constructor(options: { db: ShareDB.DB });
    listen(stream: Duplex): void;
    close(callback?: () => void): void;
  }
  export default ShareDB;
}

declare module 'sharedb-postgres' {
  // biome-ignore lint/correctness/noUnusedImports: used by `extends` below
  import type ShareDB from 'sharedb';
  export default class PostgresDB extends ShareDB.DB {
    constructor(options: { connectionString: string; options?: string; max?: number });
  }
}

declare module '@teamwork/websocket-json-stream' {
  import type { Duplex } from 'node:stream';
  import type WebSocket from 'ws';
  export default class WebSocketJSONStream extends Duplex {
    constructor(ws: WebSocket);
  }
}

declare module 'sharedb/lib/client/index.js' {
  export type JsonOp = { p: (string | number)[]; od?: unknown; oi?: unknown };
  export interface Doc {
    type: unknown;
    preventCompose: boolean;
    data: Record<string, unknown>;
    fetch(callback: (err?: Error) => void): void;
    subscribe(callback: (err?: Error) => void): void;
    create(data: unknown, callback: (err?: Error) => void): void;
    submitOp(op: JsonOp[], callback: (err?: Error) => void): void;
    on(event: 'op', listener: (op: JsonOp[], source: unknown) => void): void;
  }
  export class Connection {
    constructor(socket: unknown);
    get(collection: string, id: string): Doc;
    close(): void;
  }
}
