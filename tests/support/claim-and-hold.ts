// A stand-in worker process for the lease tests: claims one job from the pool's queue, prints its id, and renews the
// lease until it is killed (kill -9: no clean-up runs, as when a machine dies).
import { Redis } from 'ioredis';
import { RedisQueue } from '../../src/jobs/redis-queue.ts';

const [url, lockMs, worker] = process.argv.slice(2) as [string, string, string];
const q = new RedisQueue(new Redis(url, { maxRetriesPerRequest: null }), { lockMs: Number(lockMs) });
for (;;) {
  const a = await q.moveToActive({ worker, lockMs: Number(lockMs) });
  if (a) {
    process.stdout.write(`claimed ${a.job.id}\n`);
    setInterval(() => void q.extendLock(a.job.id, a.token, Number(lockMs)), Number(lockMs) / 3);
    break;
  }
  await new Promise((r) => setTimeout(r, 50));
}
