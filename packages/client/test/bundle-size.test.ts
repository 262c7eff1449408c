/**
 * What a browser app pays for the SDK: @syncbridge/client bundled by esbuild for the browser, minified,
 * with no externals, gzipped, stays within 25 KB, and the bundle holds neither TypeBox (the protocol's
 * schemas stay on the server) nor `ws` nor any `node:` module (the `#platform/*` browser variants).
 */
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const ENTRY = fileURLToPath(new URL('../src/index.ts', import.meta.url));
const LIMIT_BYTES = 25 * 1024;

describe('the browser bundle of @syncbridge/client', () => {
  it('is at most 25 KB gzipped, without TypeBox, ws or node: modules', async () => {
    const result = await build({
      entryPoints: [ENTRY],
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      conditions: ['@syncbridge/source'],
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const bytes = result.outputFiles[0]!.contents;
    const gzipped = gzipSync(bytes, { level: 9 }).length;
    console.log(`@syncbridge/client browser bundle: ${bytes.length} bytes minified, ${gzipped} gzipped`);
    expect(gzipped).toBeLessThanOrEqual(LIMIT_BYTES);
    // What ended up in the output (the metafile's top-level inputs also list what tree shaking dropped).
    const output = Object.values(result.metafile.outputs)[0]!;
    const inputs = Object.entries(output.inputs)
      .filter(([, input]) => input.bytesInOutput > 0)
      .map(([path]) => path);
    expect(inputs.filter((path) => /typebox|node_modules\/ws\/|^node:/.test(path))).toEqual([]);
    expect(inputs).toContain('packages/client/src/platform/browser/websocket.ts');
  });
});
