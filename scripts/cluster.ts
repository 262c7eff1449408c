/**
 * `npm run cluster`: three syncbridge nodes on ports 4025-4027 sharing the local PostgreSQL and Redis
 * (or NATS with SYNCBRIDGE_BUS_URL=nats://127.0.0.1:4222). The nodes share one JWT secret and one
 * admin key, kept in ./data/cluster. Ctrl-C stops all three.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const dataDir = resolve(process.env.SYNCBRIDGE_DATA_DIR ?? join(root, 'data', 'cluster'));
const databaseUrl = process.env.SYNCBRIDGE_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const busUrl = process.env.SYNCBRIDGE_BUS_URL ?? 'redis://127.0.0.1:6379';
const basePort = Number(process.env.SYNCBRIDGE_PORT ?? 4025);
const count = Number(process.env.SYNCBRIDGE_NODES ?? 3);

function secret(name: string, make: () => string): string {
  const file = join(dataDir, name);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const value = make();
  writeFileSync(file, `${value}\n`, { mode: 0o600 });
  return value;
}

mkdirSync(dataDir, { recursive: true });
const jwtSecret =
  process.env.SYNCBRIDGE_JWT_SECRET ?? secret('jwt-secret', () => randomBytes(48).toString('base64url'));
const adminKey =
  process.env.SYNCBRIDGE_ADMIN_KEY ??
  secret('admin-key', () => `sb_admin_${randomBytes(24).toString('base64url')}`);

const children: ChildProcess[] = [];
let stopping = false;

function stopAll(code: number): void {
  if (stopping) return;
  stopping = true;
  for (const child of children) child.kill('SIGTERM');
  setTimeout(() => process.exit(code), 3000).unref();
}

for (let i = 0; i < count; i++) {
  const port = basePort + i;
  const child = spawn(
    process.execPath,
    [
      '--conditions=@syncbridge/source',
      '--import',
      'tsx',
      join(root, 'packages/server/src/cli/main.ts'),
      'serve',
    ],
    {
      env: {
        ...process.env,
        SYNCBRIDGE_PORT: String(port),
        SYNCBRIDGE_NODE_ID: `node-${i + 1}`,
        SYNCBRIDGE_DATA_DIR: dataDir,
        SYNCBRIDGE_DATABASE_URL: databaseUrl,
        SYNCBRIDGE_BUS_URL: busUrl,
        SYNCBRIDGE_JWT_SECRET: jwtSecret,
        SYNCBRIDGE_ADMIN_KEY: adminKey,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.push(child);
  child.stdout!.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (line.startsWith('syncbridge listening on')) process.stdout.write(`[node-${i + 1}] ${line}\n`);
    }
  });
  child.on('exit', (code) => {
    if (!stopping) {
      process.stderr.write(`node-${i + 1} exited with ${code}; stopping the cluster\n`);
      stopAll(1);
    }
  });
}

const urls = Array.from({ length: count }, (_, i) => `ws://127.0.0.1:${basePort + i}/v1/realtime`);
process.stdout.write(
  `cluster of ${count} nodes on ${databaseUrl.replace(/:[^:@/]*@/, ':***@')} with bus ${busUrl}\n` +
    `  admin key: ${adminKey}\n` +
    `  client URLs: ${JSON.stringify(urls)}\n` +
    `  readiness: curl -s http://127.0.0.1:${basePort}/v1/ready\n`,
);
process.on('SIGINT', () => stopAll(0));
process.on('SIGTERM', () => stopAll(0));
