// Build step of @syncbridge/dashboard: bundles src/app with esbuild into dist/assets, where the compiled
// module finds it, so a server installed from the registry serves the dashboard without a bundler.
// Runs after tsc (it uses the compiled bundleApp, so the options live in one place).
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { APP_FILES, bundleApp } from '../dist/index.js';

const out = new URL('../dist/assets/', import.meta.url);
const bundle = await bundleApp(fileURLToPath(new URL('../src/app/main.tsx', import.meta.url)));
await mkdir(out, { recursive: true });
for (const name of APP_FILES) {
  const bytes = bundle.get(name);
  if (!bytes) throw new Error(`the dashboard bundle has no ${name}`);
  await writeFile(new URL(name, out), bytes);
}
