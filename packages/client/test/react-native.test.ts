/**
 * The packages as Metro (React Native's bundler) resolves them: the `react-native` condition with
 * `import` and `default`, no `browser` and no `node`, main fields `react-native`, `browser`, `main`.
 * @syncbridge/client and @syncbridge/react, from their built `dist/` (as installed), bundle with no
 * externals but React, take the browser variants of `#platform/*` (WebSocket from the global, the
 * FileStorage stand-in), and reach neither `ws` nor any `node:` module, which Metro cannot resolve.
 * esbuild stands in for Metro here: same conditions, and it fails on an import it cannot resolve.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

describe('the packages under React Native conditions (Metro)', () => {
  it('resolve to the browser variants, with no node: module and no ws', async () => {
    for (const pkg of ['client', 'react', 'protocol']) {
      if (!existsSync(`${ROOT}packages/${pkg}/dist/index.js`))
        throw new Error(`packages/${pkg} is not built: run npm run build first`);
    }
    const result = await build({
      stdin: {
        contents:
          "export * from '@syncbridge/client';\nexport * from '@syncbridge/react';\nimport { FileStorage } from '@syncbridge/client';\nexport const probe = FileStorage;",
        resolveDir: ROOT,
        loader: 'js',
      },
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      conditions: ['react-native'],
      mainFields: ['react-native', 'browser', 'main'],
      target: 'es2022',
      external: ['react', 'react/*'],
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.filter((path) => /^node:|node_modules\/ws\/|platform\/node\//.test(path))).toEqual([]);
    expect(inputs).toEqual(
      expect.arrayContaining([
        'packages/client/dist/platform/browser/websocket.js',
        'packages/client/dist/platform/browser/file-storage.js',
        'packages/react/dist/index.js',
      ]),
    );
    const imports = Object.values(result.metafile.outputs).flatMap((o) => o.imports.map((i) => i.path));
    expect(imports.filter((path) => path !== 'react' && !path.startsWith('react/'))).toEqual([]);
  });
});
