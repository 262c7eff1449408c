import { defaultClientConditions, defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

/**
 * Tests run the workspace's TypeScript sources, not its built `dist`: every package's `exports` (and the
 * client's `#platform/*` imports) map the `@syncbridge/source` condition to `src`. Vitest resolves with it,
 * and NODE_OPTIONS carries it to every Node process a test starts (the CLI and examples under tsx), so
 * nothing a test runs depends on a build being fresh. Tests of the packed packages clear it for theirs.
 */
export const SOURCE_CONDITION = '@syncbridge/source';
const sourceFlag = `--conditions=${SOURCE_CONDITION}`;
if (!process.env.NODE_OPTIONS?.includes(sourceFlag))
  process.env.NODE_OPTIONS = [process.env.NODE_OPTIONS, sourceFlag].filter(Boolean).join(' ');

export default defineConfig({
  resolve: { conditions: [SOURCE_CONDITION, ...defaultClientConditions] },
  ssr: { resolve: { conditions: [SOURCE_CONDITION, ...defaultServerConditions] } },
  test: {
    include: ['packages/*/test/**/*.test.{ts,tsx}'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
