/**
 * The workspace's published packages, and packing them as npm would publish them. Every package listed
 * in the root package.json's `workspaces` that is not `private` is one: adding a package to the workspace
 * is all it takes for the package checks (scripts/check-packages.ts) and the installed-package test
 * (packages/client/test/packed-install.test.ts) to cover it. Packing never builds: build first.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..');

export interface WorkspacePackage {
  name: string;
  /** Absolute path of the package's folder. */
  dir: string;
  manifest: { name: string; version: string; private?: boolean; files?: string[] };
}

export function publishedPackages(): WorkspacePackage[] {
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] };
  return root.workspaces
    .map((folder) => {
      const dir = join(ROOT, folder);
      const manifest = JSON.parse(
        readFileSync(join(dir, 'package.json'), 'utf8'),
      ) as WorkspacePackage['manifest'];
      return { name: manifest.name, dir, manifest };
    })
    .filter((pkg) => pkg.manifest.private !== true);
}

export interface PackedPackage extends WorkspacePackage {
  /** Absolute path of the .tgz. */
  tarball: string;
  files: string[];
}

/** `npm pack` of every published package into `destination` (lifecycle scripts off: build first). */
export function packPackages(destination: string, packages = publishedPackages()): PackedPackage[] {
  for (const pkg of packages) {
    if (pkg.manifest.files?.includes('dist') && !existsSync(join(pkg.dir, 'dist')))
      throw new Error(`${pkg.name} is not built (no ${join(pkg.dir, 'dist')}): run npm run build`);
  }
  const args = ['pack', '--json', '--ignore-scripts', '--pack-destination', destination];
  for (const pkg of packages) args.push('--workspace', pkg.name);
  const out = execFileSync('npm', args, {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const packed = JSON.parse(out) as Array<{ name: string; filename: string; files: Array<{ path: string }> }>;
  return packages.map((pkg) => {
    const entry = packed.find((p) => p.name === pkg.name);
    if (!entry) throw new Error(`npm pack did not pack ${pkg.name}`);
    return { ...pkg, tarball: join(destination, entry.filename), files: entry.files.map((f) => f.path) };
  });
}
