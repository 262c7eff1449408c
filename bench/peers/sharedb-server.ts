/**
 * ShareDB peer for the benchmarks: a ShareDB backend behind a `ws` server, with its in-memory database
 * or, when PG_URL is set, sharedb-postgres (ops and snapshots tables in the schema PG_SCHEMA, created
 * here from the adapter's own structure.sql). Clients speak ShareDB's protocol (sharedb/lib/client).
 *
 *   PORT=0 [PG_URL=postgres://… PG_SCHEMA=…] node --import tsx bench/peers/sharedb-server.ts
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import WebSocketJSONStream from '@teamwork/websocket-json-stream';
import pg from 'pg';
import ShareDB from 'sharedb';
import PostgresDB from 'sharedb-postgres';
import { WebSocketServer } from 'ws';

const pgUrl = process.env.PG_URL;
const schema = process.env.PG_SCHEMA ?? 'public';

async function database(): Promise<ShareDB.DB> {
  if (!pgUrl) return new ShareDB.MemoryDB();
  const client = new pg.Client({ connectionString: pgUrl });
  await client.connect();
  const structure = readFileSync(
    createRequire(import.meta.url).resolve('sharedb-postgres/structure.sql'),
    'utf8',
  );
  await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"; SET search_path TO "${schema}"; ${structure}`);
  await client.end();
  return new PostgresDB({ connectionString: pgUrl, options: `-c search_path="${schema}"`, max: 10 });
}

const backend = new ShareDB({ db: await database() });
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(process.env.PORT ?? 0),
  perMessageDeflate: false,
});
wss.on('connection', (ws) => {
  ws.on('error', () => undefined);
  backend.listen(new WebSocketJSONStream(ws));
});
wss.on('listening', () => {
  const address = wss.address();
  const port = typeof address === 'object' && address ? address.port : address;
  process.stdout.write(
    `sharedb server (${pgUrl ? 'postgres' : 'memory'}) listening on ws://127.0.0.1:${port}\n`,
  );
});

process.on('SIGTERM', () => {
  for (const client of wss.clients) client.terminate();
  backend.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
