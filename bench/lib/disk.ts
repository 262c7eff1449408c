/**
 * How long an fsync takes on this machine's temp disk right now. Durable figures (an acknowledged
 * write waits for one) move with it, and on a shared machine it moves a lot, so benchmarks record it
 * beside the figures they measure.
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentileSorted } from './stats.ts';

/** Writes 4 KiB and fdatasyncs it `n` times in the temp dir; latencies in ms. */
export function fsyncLatency(n = 100): { p50: number; p99: number; max: number } {
  const dir = mkdtempSync(join(tmpdir(), 'fsync-probe-'));
  const fd = openSync(join(dir, 'probe'), 'w');
  const block = Buffer.alloc(4096, 1);
  const samples: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const start = performance.now();
      writeSync(fd, block, 0, block.length, (i % 64) * block.length);
      fdatasyncSync(fd);
      samples.push(performance.now() - start);
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  samples.sort((a, b) => a - b);
  return { p50: percentileSorted(samples, 50), p99: percentileSorted(samples, 99), max: samples[n - 1]! };
}
