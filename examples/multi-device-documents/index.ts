/**
 * Runs the Node part of the multi-device documents example against a running server:
 *
 *   SYNCBRIDGE_ADMIN_KEY=sb_admin_… node --import tsx examples/multi-device-documents/index.ts
 *
 * SYNCBRIDGE_URL defaults to http://127.0.0.1:4025. Exits 0 when the phone's offline edit was merged and
 * both devices ended with the server's document, and the reviewer's branch was merged back without the
 * draft ever reaching the author's laptop; 1 on any failure, or after 20 s.
 */
import { isDeepStrictEqual } from 'node:util';
import { runDocuments } from './documents.ts';
import { runReview } from './review.ts';

const url = process.env.SYNCBRIDGE_URL ?? 'http://127.0.0.1:4025';
const adminKey = process.env.SYNCBRIDGE_ADMIN_KEY;

function fail(message: string): never {
  process.stderr.write(`multi-device documents failed: ${message}\n`);
  process.exit(1);
}

if (!adminKey) fail('set SYNCBRIDGE_ADMIN_KEY to the admin key the server printed on its first start');

const timer = setTimeout(() => fail('no result within 20 s'), 20_000);

try {
  const result = await runDocuments({ url, adminKey, log: (line) => process.stdout.write(`${line}\n`) });
  if (result.phoneEdit.status !== 'merged' && result.phoneEdit.status !== 'applied') {
    fail(`the phone's edit was ${result.phoneEdit.status}`);
  }
  for (const device of [result.laptop, result.phone]) {
    if (!isDeepStrictEqual(device.doc, result.server)) fail(`${device.deviceId} differs from the server`);
  }
  const review = await runReview({ url, adminKey, log: (line) => process.stdout.write(`${line}\n`) });
  if (review.merge.status !== 'merged') fail(`the review branch was ${review.merge.status}`);
  if (review.draftSeenOnMain) fail('the draft reached the main line before the merge');
  if (!isDeepStrictEqual(review.laptop, review.merge.record.data)) fail('the laptop differs from the merge');
  clearTimeout(timer);
  process.stdout.write('ok\n');
} catch (err) {
  const cause = (err as { cause?: { code?: string } }).cause;
  if (cause?.code === 'ECONNREFUSED') fail(`no server at ${url}: start one with npm start`);
  fail((err as Error).message);
}
