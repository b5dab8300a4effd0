// A queue's job counts, read at most once per `maxAgeMs`: the capacity check of every request reads this instead
// of Redis (one round trip per queue). A stale value is answered while a fresh one is read (stale-while-revalidate);
// only the very first call waits. The capacity limit is a soft one: a second's staleness lets at most a second's
// worth of extra requests in.
import type { JobCounts } from './queue.ts';

export function cachedCounts(read: () => Promise<JobCounts>, maxAgeMs: number, now: () => number = Date.now): () => Promise<JobCounts> {
  let value: JobCounts | undefined;
  let at = 0;
  let reading: Promise<JobCounts> | undefined;
  const refresh = () => (reading ??= read().then((v) => { value = v; at = now(); return v; }).finally(() => { reading = undefined; }));
  return async () => {
    if (value === undefined) return refresh();
    if (now() - at > maxAgeMs) refresh().catch(() => undefined);
    return value;
  };
}
