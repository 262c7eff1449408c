/**
 * The layering of packages/server/src, checked from its sources (scripts/check-architecture.ts): no
 * folder-level import cycle, the `never` rules of docs/architecture.md, no source file over 450 lines.
 * Known exceptions are in that script's commented allow-list, which may only shrink.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  check,
  cycles,
  folderGraph,
  formatGraph,
  SERVER_SRC,
  scan,
} from '../../../scripts/check-architecture.ts';

describe('server architecture', () => {
  it('holds its layering rules (apart from the allow-list)', () => {
    const { violations, graph } = check(SERVER_SRC);
    const report = violations.map((v) => `${v.id}\n    ${v.detail}`).join('\n');
    expect(violations, `${report}\n\nfolder graph:\n${formatGraph(graph)}`).toEqual([]);
  });

  describe('the checker itself', () => {
    const dir = mkdtempSync(join(tmpdir(), 'syncbridge-arch-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const write = (path: string, text: string) => {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    };

    it('finds a folder cycle, a transport import from store and an oversized file', () => {
      write('a/x.ts', "import { y } from '../b/y.ts';\nexport const x = y;\n");
      write('b/y.ts', "import type { X } from '../a/x.ts';\nexport const y = 1;\n");
      write('store/s.ts', "import { WebSocket } from 'ws';\nimport { h } from '../http/h.ts';\n");
      write('http/h.ts', `${'// line\n'.repeat(451)}export const h = 1;\n`);
      const files = scan(dir);
      const graph = folderGraph(files);
      expect(cycles(graph)).toEqual([['a', 'b']]);
      expect(files.find((f) => f.file === 'store/s.ts')?.packages).toEqual(['ws']);
      expect(graph.get('store')).toEqual(new Set(['http']));
      expect(files.find((f) => f.file === 'http/h.ts')?.lines).toBe(452);
      const ids = check(dir).violations.map((v) => v.id);
      expect(ids).toEqual(
        expect.arrayContaining(['cycle:a,b', 'never:store->http', 'never:store->ws', 'size:http/h.ts']),
      );
    });
  });
});
