/**
 * Prints the top functions and packages by self time of a V8 CPU profile.
 *
 *   node --import tsx bench/profile-summary.ts <file.cpuprofile | dir> [--top 20]
 *
 * Profiles come from `--cpu-prof` on any benchmark script (see bench/lib/options.ts).
 */
import { statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatProfile, newestProfile, summarizeProfile } from './lib/profile.ts';

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: { top: { type: 'string' } },
});
const target = positionals[0];
if (!target) {
  process.stderr.write('usage: bench/profile-summary.ts <file.cpuprofile | dir> [--top 20]\n');
  process.exit(1);
}
const file = statSync(target).isDirectory() ? newestProfile(target) : target;
if (!file) {
  process.stderr.write(`no .cpuprofile in ${target}\n`);
  process.exit(1);
}
console.log(formatProfile(summarizeProfile(file, Number(values.top ?? 20))));
