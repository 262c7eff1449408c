#!/usr/bin/env node
// Entry point of the `syncbridge` command: runs the compiled CLI, bundled into dist/bundle/cli.js by the
// build. In a clone of the repository the build runs in `npm install` (prepare); `npm run dev` runs the
// TypeScript sources instead.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/bundle/cli.js', import.meta.url);
if (!existsSync(cli)) {
  console.error('syncbridge is not built (dist/bundle/cli.js is missing): run `npm run build` first');
  process.exit(1);
}
await import(cli.href);
