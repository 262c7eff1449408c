/**
 * CEL libraries for access rules: the CPU cost of compiling and of evaluating the rules of the access
 * rules docs (docs/access-rules.md) with `@marcbachmann/cel-js` and `@bufbuild/cel`, in one process,
 * alternating the two (A B A B …) so both see the same machine load. Reports CPU µs per compile and per
 * evaluation (process.cpuUsage, user + system), medians of the repetitions, and the ratio bufbuild / marcbachmann.
 *
 *   node --import tsx bench/cel.ts [--reps 5] [--evals 200000] [--compiles 5000]
 *
 * Evaluation runs each rule against contexts that allow and that refuse (a clerk of wh-1 and of wh-2,
 * a manager, the owner and another user), as the server would per record and reader.
 */
import { parseArgs } from 'node:util';
import { parse as bufParse, celEnv, isCelError, plan } from '@bufbuild/cel';
import { parse as marcParse } from '@marcbachmann/cel-js';
import { median } from './lib/stats.ts';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { reps: { type: 'string' }, evals: { type: 'string' }, compiles: { type: 'string' } },
});
const reps = Number(values.reps ?? 5);
const evals = Number(values.evals ?? 200_000);
const compiles = Number(values.compiles ?? 5_000);

const RULES = [
  "auth.roles.exists(r, r == 'manager') || record.locationId in auth.claims.locations",
  'record.locationId in auth.claims.locations',
  "!auth.roles.exists(r, r == 'manager')",
  'record.ownerId == auth.user',
  'record.ownerId == auth.user && next.ownerId == auth.user',
];

function auth(user: string, roles: string[], locations: string[]) {
  return { user, roles, claims: { locations } };
}
const RECORD = { locationId: 'wh-1', ownerId: 'alice', sku: 'A-1', qty: 12, costPrice: 3.5 };
const CONTEXTS = [
  { auth: auth('alice', ['clerk'], ['wh-1']), record: RECORD, next: RECORD },
  { auth: auth('bob', ['clerk'], ['wh-2']), record: RECORD, next: { ...RECORD, ownerId: 'bob' } },
  { auth: auth('carol', ['manager'], []), record: RECORD, next: RECORD },
];

type Evaluate = (ctx: (typeof CONTEXTS)[number]) => unknown;
interface Library {
  name: string;
  compile(rule: string): Evaluate;
}

const bufEnv = celEnv();
const LIBRARIES: Library[] = [
  {
    name: '@marcbachmann/cel-js 8.0.0',
    compile: (rule) => {
      const fn = marcParse(rule);
      return (ctx) => fn(ctx);
    },
  },
  {
    name: '@bufbuild/cel 0.6.1',
    compile: (rule) => {
      const fn = plan(bufEnv, bufParse(rule));
      return (ctx) => {
        const out = fn(ctx);
        if (isCelError(out)) throw out;
        return out;
      };
    },
  },
];

function cpuMicros(run: () => void): number {
  const start = process.cpuUsage();
  run();
  const used = process.cpuUsage(start);
  return used.user + used.system;
}

// Both libraries must agree on every answer, or the comparison is of different things.
for (const rule of RULES) {
  const answers = LIBRARIES.map((lib) => CONTEXTS.map((ctx) => lib.compile(rule)(ctx)).join(','));
  if (new Set(answers).size !== 1) throw new Error(`libraries disagree on ${rule}: ${answers.join(' / ')}`);
}

const compileUs = new Map<string, number[]>();
const evalUs = new Map<string, number[]>();
let sink = 0;
for (let rep = 0; rep < reps + 1; rep++) {
  for (const lib of LIBRARIES) {
    const c = cpuMicros(() => {
      for (let i = 0; i < compiles; i++) sink += lib.compile(RULES[i % RULES.length]!) ? 1 : 0;
    });
    const compiled = RULES.map((rule) => lib.compile(rule));
    const e = cpuMicros(() => {
      for (let i = 0; i < evals; i++) {
        if (compiled[i % compiled.length]!(CONTEXTS[i % CONTEXTS.length]!) === true) sink += 1;
      }
    });
    if (rep === 0) continue; // warm-up round: let the JIT settle before measuring
    compileUs.set(lib.name, [...(compileUs.get(lib.name) ?? []), c / compiles]);
    evalUs.set(lib.name, [...(evalUs.get(lib.name) ?? []), e / evals]);
  }
}

const rows = LIBRARIES.map((lib) => ({
  name: lib.name,
  compile: median(compileUs.get(lib.name)!),
  evaluate: median(evalUs.get(lib.name)!),
}));
process.stdout.write(
  `CEL rules: ${RULES.length} rules x ${CONTEXTS.length} contexts, ${reps} reps (sink ${sink})\n`,
);
for (const row of rows) {
  process.stdout.write(
    `${row.name.padEnd(28)} compile ${row.compile.toFixed(2).padStart(8)} µs CPU   evaluate ${row.evaluate.toFixed(3).padStart(7)} µs CPU\n`,
  );
}
const [a, b] = rows;
if (a && b) {
  process.stdout.write(
    `ratio ${b.name} / ${a.name}: compile ${(b.compile / a.compile).toFixed(2)}x, evaluate ${(b.evaluate / a.evaluate).toFixed(2)}x\n`,
  );
}
