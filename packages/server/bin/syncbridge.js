#!/usr/bin/env node
// Entry point of the `syncbridge` command: runs the compiled CLI, bundled into dist/bundle/cli.js by the
// build. In a clone of the repository the build runs in `npm install` (prepare); `npm run dev` runs the
// TypeScript sources instead. A build older than the sources beside it (a clone pulled without
// rebuilding) is named on stderr, since it would run yesterday's code without a word. An installed
// package (under node_modules) ships the build of its own sources: it is not checked, which saves the
// walk over ~140 source files at every start.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/bundle/cli.js', import.meta.url);
if (!existsSync(cli)) {
  console.error('syncbridge is not built (dist/bundle/cli.js is missing): run `npm run build` first');
  process.exit(1);
}

/** The newest modification time of the .ts files below `dir` (0 when it does not exist). */
function newestSource(dir) {
  let newest = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

const installed = fileURLToPath(import.meta.url)
  .split(/[\\/]/)
  .includes('node_modules');
const sources = ['../src', '../../protocol/src'].map((p) => fileURLToPath(new URL(p, import.meta.url)));
const built = statSync(cli).mtimeMs;
const stale = installed ? undefined : sources.find((dir) => newestSource(dir) > built);
if (stale) {
  console.error(
    `syncbridge: the build (dist/bundle/cli.js) is older than the sources in ${stale}: ` +
      'run `npm run build` (or `npm run dev` to run the sources)',
  );
}
await import(cli.href);
