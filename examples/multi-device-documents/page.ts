/**
 * The browser page of the example, built for serving: `index.html` and `browser.ts` bundled with its
 * SDK by esbuild into one ES module (`app.js`). `serve.ts` serves them; the Chromium test writes them
 * to a temporary directory of its own.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

export interface BuiltPage {
  'index.html': string;
  'app.js': string;
}

export async function buildPage(): Promise<BuiltPage> {
  const result = await build({
    entryPoints: [join(import.meta.dirname, 'browser.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    // No externals: the SDK's browser build never imports `ws` or `node:*`. Under the workspace's tests
    // (NODE_OPTIONS carries the source condition) the SDK is bundled from its sources, else from dist.
    conditions: process.env.NODE_OPTIONS?.includes('@syncbridge/source') ? ['@syncbridge/source'] : [],
    logLevel: 'silent',
  });
  return {
    'index.html': readFileSync(join(import.meta.dirname, 'index.html'), 'utf8'),
    'app.js': result.outputFiles[0]!.text,
  };
}
