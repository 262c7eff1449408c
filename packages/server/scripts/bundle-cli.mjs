// Build step of @syncbridge/server, after tsc: bundles the CLI (dist/cli/main.js) with esbuild into
// dist/bundle/, the file `bin/syncbridge.js` runs. Dependencies stay in node_modules, except TypeBox and
// @syncbridge/protocol, which are inlined and tree-shaken (TypeBox's ES build alone is ~400 modules);
// the lazily imported stores and buses stay separate chunks, loaded only when configured. One bundle
// starts faster and holds less memory than loading every module of dist/ (docs/benchmarks.md#startup).
// The library entry (`exports`, dist/index.js) is the module tree tsc wrote, for embedding.
import { readFileSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const INLINED = new Set(['@sinclair/typebox', '@syncbridge/protocol']);
const external = Object.keys(pkg.dependencies).filter((name) => !INLINED.has(name));
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
  // Packages that are not dependencies (esbuild, which the dashboard loads only without its prebuilt
  // bundle) stay out too.
  external: [...external, ...external.map((name) => `${name}/*`), 'esbuild'],
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'none',
  logLevel: 'warning',
});
