/**
 * `npm run check:packages` (part of `npm test`, after the build): packs every published package and lints
 * the tarball as the registry would receive it, with publint (package.json fields, exports, files) and
 * Are the Types Wrong (attw, profile esm-only: types resolve for `import` under node16 and bundlers; the
 * packages ship ES modules only, so CommonJS resolution is not checked). Exits non-zero on any error or
 * warning, and prints publint's suggestions without failing on them.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkPackage, createPackageFromTarballData } from '@arethetypeswrong/core';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import { packPackages } from './packages.ts';

/** attw's `esm-only` profile: CommonJS (node16 from require) and node10 resolution are not ours to pass. */
const IGNORED_RESOLUTIONS = new Set(['node10', 'node16-cjs']);

const started = performance.now();
const dir = mkdtempSync(join(tmpdir(), 'syncbridge-pack-check-'));
let failed = 0;
try {
  for (const pkg of packPackages(dir)) {
    const bytes = readFileSync(pkg.tarball);
    const tarball = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const { messages, pkg: manifest } = await publint({ pack: { tarball }, strict: true });
    for (const message of messages) {
      const line = `${pkg.name}: publint ${message.type}: ${formatMessage(message, manifest, { color: false })}`;
      if (message.type === 'suggestion') console.log(line);
      else {
        console.error(line);
        failed++;
      }
    }
    const analysis = await checkPackage(createPackageFromTarballData(new Uint8Array(bytes)));
    if (!analysis.types) {
      console.error(`${pkg.name}: attw: the package ships no types`);
      failed++;
    } else {
      for (const problem of analysis.problems) {
        if ('resolutionKind' in problem && IGNORED_RESOLUTIONS.has(problem.resolutionKind)) continue;
        console.error(`${pkg.name}: attw ${problem.kind}: ${JSON.stringify(problem)}`);
        failed++;
      }
    }
    console.log(`${pkg.name}: ${pkg.files.length} files, publint and attw checked`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(
  `package checks: ${failed === 0 ? 'passed' : `${failed} problems`} in ${Math.round(performance.now() - started)} ms`,
);
process.exit(failed === 0 ? 0 : 1);
