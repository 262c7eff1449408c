#!/usr/bin/env node
// Entry point of the `syncbridge` command: runs the compiled CLI (dist/cli/main.js). In a clone of the
// repository the build runs in `npm install` (prepare); `npm run dev` runs the TypeScript sources instead.
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('syncbridge is not built (dist/cli/main.js is missing): run `npm run build` first');
  process.exit(1);
}
await import(main.href);
