// The pool's capacity check reads queue counts at most once per period, answering the last value meanwhile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedCounts } from '../../src/jobs/cached-counts.ts';

test('counts are read once per period; a stale value is answered while the fresh one is read', async () => {
  let now = 0;
  let reads = 0;
  let release: (() => void) | undefined;
  const read = async () => {
    reads++;
    if (reads === 2) await new Promise<void>((r) => (release = r));
    return { queued: reads, running: 0 };
  };
  const counts = cachedCounts(read, 1000, () => now);
  assert.deepEqual(await counts(), { queued: 1, running: 0 }, 'the first call waits for a read');
  now = 999;
  assert.equal((await counts()).queued, 1);
  assert.equal(reads, 1, 'no read within the period');
  now = 1001;
  assert.equal((await counts()).queued, 1, 'stale: the old value at once');
  assert.equal((await counts()).queued, 1);
  assert.equal(reads, 2, 'one read in flight, not one per call');
  release!();
  await new Promise((r) => setImmediate(r));
  assert.equal((await counts()).queued, 2, 'then the fresh value');
});
