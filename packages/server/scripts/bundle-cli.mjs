// Build step of @syncbridge/server, after tsc: bundles the CLI (dist/cli/main.js) with esbuild into
// dist/bundle/, the file `bin/syncbridge.js` runs. Most dependencies are inlined too (Fastify, pino, ws,
// ajv, prom-client, jose, TypeBox, @syncbridge/protocol ...): Node then compiles one file instead of
// resolving and wrapping ~400 CommonJS modules, which was most of the cold start
// (docs/benchmarks.md#startup-and-idle-memory-of-the-built-server). What stays in node_modules:
// - better-sqlite3 (a native addon) and the packages that read files beside their own modules
//   (@fastify/swagger-ui serves its static directory; @syncbridge/dashboard its prebuilt assets);
// - what `serve` loads only when configured or on first use (pg, ioredis, nats, undici, yjs, yaml),
//   so a SQLite server never parses them;
// - optional peers of inlined packages, looked up with require() in a try (bufferutil, utf-8-validate,
//   pino-pretty), and esbuild, which the dashboard loads only without its bundle.
// Every package an inlined one requires unconditionally is inlined with it (e.g. prom-client's
// @opentelemetry/api): npm may nest it under its parent, where the bundle could not find it.
// pino's transports (worker threads started from a file path) are not used: the server logs to stderr
// through pino.destination. Whitespace and syntax are minified, identifiers kept (class names show in
// errors and logs). The library entry (`exports`, dist/index.js) is the module tree tsc wrote.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

const EXTERNAL = [
  'better-sqlite3',
  '@fastify/swagger-ui',
  '@syncbridge/dashboard',
  'pg',
  'ioredis',
  'nats',
  'undici',
  'yjs',
  'yaml',
  'bufferutil',
  'utf-8-validate',
  'pino-pretty',
  'esbuild',
];
const outdir = new URL('../dist/bundle/', import.meta.url).pathname;

rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: { cli: new URL('../dist/cli/main.js', import.meta.url).pathname },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.10',
  outdir,
  external: [...EXTERNAL, ...EXTERNAL.map((name) => `${name}/*`)],
  // The inlined CommonJS packages call require() for Node's built-ins and their optional peers.
  banner: {
    js: "import { createRequire as __syncbridgeRequire } from 'node:module';\nconst require = __syncbridgeRequire(import.meta.url);",
  },
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'none',
  logLevel: 'warning',
});
