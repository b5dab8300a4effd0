// The pool's job queue: the job records live in Redis hashes (what fetch reads from any server), and BullMQ
// dispatches them: one BullMQ queue per base model (`model.<id>`) plus one per server for pinned jobs
// (`server.<id>`, `loadbalancer: "no"`). A server pulls from the queues of the models it has loaded first, then
// from those it has installed (model affinity), and takes a model's job out of order when it has waited longer
// than `affinityMaxWaitMs` (no starvation); it never pulls from a model it does not have installed.
// BullMQ's lock is the lease (lockDuration = LEASE_MS, renewed by extendLock while the engine runs) and its
// stalled-job check sends back the jobs whose lock expired. Completion is one Lua script: the first completion of
// an unfinished job stores the result, queues the webhook in the Redis outbox and publishes the end, atomically.
// Round trips are counted (bench/pool.ts): adding a job is two (our record, BullMQ's add) plus a PUBLISH not waited
// for; a claim is three (the queue heads, BullMQ's moveToActive, our claim returning the record); a completion two
// (ours, BullMQ's). A waiter in the process that completed the job gets it without reading it back.
// Keys: `<prefix>:job:<id>`, `<prefix>:jobid`, `<prefix>:pending:<key id>`, `<prefix>:queues`,
// the outbox (worker/redis-outbox.ts) and BullMQ's own under `<prefix>-bull`. One Redis, not Redis Cluster.
import { EventEmitter } from 'node:events';
import { Queue, Worker, type Job as BullJob } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Job, JobResult, JobStatus, RunnerEta } from './job.ts';
import { isFinished, MAX_ATTEMPTS, type ActiveJob, type ClaimOptions, type Failure, type JobCounts, type JobQueue, type NewJob,
  type WebhookDelivery } from './queue.ts';
import type { GenerateRequest } from '../request/schema.ts';
import { firstMissing, needsKey, needsOf, type ModelNeeds } from './model-set.ts';

export interface RedisQueueOptions {
  /** Key prefix (default "cn"). */
  prefix?: string;
  /** Lease length (ms): BullMQ's lockDuration. */
  lockMs: number;
  /** A model's oldest job waiting longer than this is taken before jobs of models loaded here (default 10 s). */
  affinityMaxWaitMs?: number;
  now?: () => number;
  pollMs?: number;
  /** Pins every job added here to this server (a pool without a shared output store: outputs stay where they were made). */
  pinAllTo?: string;
}

// A new job's record, in one round trip: its id, the record, the key's unfinished set, the queue's name and the
// models its jobs need beyond the base (JSON, '' for none). KEYS: id counter, queue names set, queue needs hash.
// ARGV: prefix, key id, queue name, needs, then the record's field/value pairs (no id).
const ADD = `
local id = redis.call('INCR', KEYS[1])
local fields = { 'id', id }
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', ARGV[1] .. ':job:' .. id, unpack(fields))
redis.call('SADD', ARGV[1] .. ':pending:' .. ARGV[2], id)
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('HSETNX', KEYS[3], ARGV[3], ARGV[4])
return id`;

// Completion, atomically: only an unfinished job; result or error, webhook into the outbox, per-key count.
// KEYS: job hash, outbox zset, webhook id counter. ARGV: status, result, error, error_status, now,
// job id, webhook JSON ('' for none), prefix.
const FINISH = `
local st = redis.call('HGET', KEYS[1], 'status')
if (not st) or st == 'success' or st == 'failed' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'result', ARGV[2], 'error', ARGV[3], 'error_status', ARGV[4], 'finished_at', ARGV[5], 'token', '')
redis.call('SREM', ARGV[8] .. ':pending:' .. redis.call('HGET', KEYS[1], 'key_id'), ARGV[6])
if ARGV[7] ~= '' then
  local w = cjson.decode(ARGV[7])
  local wid = redis.call('INCR', KEYS[3])
  redis.call('HSET', ARGV[8] .. ':webhook:' .. wid, 'job_id', ARGV[6], 'url', w.url, 'body', w.body, 'status', 'pending', 'attempts', 0, 'last_error', '')
  redis.call('RPUSH', ARGV[8] .. ':webhooks:job:' .. ARGV[6], wid)
  redis.call('ZADD', KEYS[2], ARGV[5], wid)
end
redis.call('PUBLISH', ARGV[8] .. ':finished', ARGV[6])
return 1`;

// A claim: the job is unfinished; count the attempt; record the lease holder. KEYS: job hash. ARGV: worker, token, now, max attempts.
// Returns {1, the record's field/value pairs} (run it), {0} (finished already: drop the BullMQ job), {-1} (too many attempts: failed here).
const CLAIM = `
local st = redis.call('HGET', KEYS[1], 'status')
if (not st) or st == 'success' or st == 'failed' then return { 0 } end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if n > tonumber(ARGV[4]) then return { -1 } end
redis.call('HSET', KEYS[1], 'status', 'running', 'worker', ARGV[1], 'token', ARGV[2], 'started_at', ARGV[3], 'step', 0, 'eta_seconds', '', 'eta_at', '')
return { 1, redis.call('HGETALL', KEYS[1]) }`;

// The queues a worker may take from, in one round trip: its own queue and every model queue (name, the models its
// jobs need beyond the base as JSON, and the BullMQ timestamp (ms) of the job taken next, -1 when empty: BullMQ
// LPUSHes new jobs and RPOPLPUSHes from the tail). KEYS: queue names set, queue needs hash. ARGV: BullMQ prefix, own queue.
const CANDIDATES = `
local function head(q)
  local id = redis.call('LINDEX', ARGV[1] .. ':' .. q .. ':wait', -1)
  if not id then return -1 end
  return tonumber(redis.call('HGET', ARGV[1] .. ':' .. q .. ':' .. id, 'timestamp') or '0')
end
local out = { ARGV[2], '', head(ARGV[2]) }
for _, q in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if string.sub(q, 1, 6) == 'model.' then
    out[#out + 1] = q; out[#out + 1] = redis.call('HGET', KEYS[2], q) or ''; out[#out + 1] = head(q)
  end
end
return out`;

// Progress only from the lease holder. KEYS: job hash. ARGV: token, step, total.
const PROGRESS = `
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'step', ARGV[2], 'total_steps', ARGV[3], 'eta_seconds', ARGV[4], 'eta_at', ARGV[5])
return 1`;

// Hand back: KEYS: job hash. ARGV: token.
const HAND_BACK = `
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'status', 'queued', 'token', '', 'worker', '', 'step', 0, 'eta_seconds', '', 'eta_at', '')
redis.call('HINCRBY', KEYS[1], 'attempts', -1)
return 1`;

type Scripted = Redis & {
  cnFinish(...a: (string | number)[]): Promise<number>;
  cnClaim(...a: (string | number)[]): Promise<[number, string[]?]>;
  cnAdd(...a: (string | number)[]): Promise<number>;
  cnCandidates(...a: (string | number)[]): Promise<(string | number)[]>;
  cnProgress(...a: (string | number)[]): Promise<number>;
  cnHandBack(...a: (string | number)[]): Promise<number>;
};

/** BullMQ refuses integer custom ids: job 12 is BullMQ job "j12". */
const bullId = (id: number) => `j${id}`;
const jobIdOf = (bullJobId: string) => Number(bullJobId.slice(1));

/** A base model's queue (`model.<id>`), or that of a model set (`model.<id>~<needsKey>`) for jobs that need more. */
export const modelQueueName = (modelId: string, needs = '') => `model.${modelId}${needs ? `~${needs}` : ''}`;
/** The base model of a model queue's name. */
export const baseOfQueue = (name: string) => name.slice('model.'.length).split('~')[0]!;
export const serverQueueName = (serverId: string) => `server.${serverId.replace(/:/g, '_')}`;

export class RedisQueue implements JobQueue {
  readonly backend = 'redis' as const;
  private readonly p: string;
  private readonly r: Scripted;
  private readonly sub: Redis;
  private readonly events = new EventEmitter();
  private readonly queues = new Map<string, Queue>();
  private readonly workers = new Map<string, Worker>();
  /** Jobs claimed by this process: BullMQ job, lock token and the job as claimed. */
  private readonly active = new Map<number, { bull: BullJob; token: string; job: Job }>();
  private readonly stalled: number[] = [];
  private readonly now: () => number;
  private closed = false;

  constructor(redis: Redis, private readonly o: RedisQueueOptions) {
    this.p = o.prefix ?? 'cn';
    this.now = o.now ?? Date.now;
    this.events.setMaxListeners(0);
    this.r = redis as Scripted;
    this.r.defineCommand('cnFinish', { numberOfKeys: 3, lua: FINISH });
    this.r.defineCommand('cnAdd', { numberOfKeys: 3, lua: ADD });
    this.r.defineCommand('cnCandidates', { numberOfKeys: 2, lua: CANDIDATES });
    this.r.defineCommand('cnClaim', { numberOfKeys: 1, lua: CLAIM });
    this.r.defineCommand('cnProgress', { numberOfKeys: 1, lua: PROGRESS });
    this.r.defineCommand('cnHandBack', { numberOfKeys: 1, lua: HAND_BACK });
    // Pool-wide events: a job added anywhere wakes idle workers; a job finished anywhere ends waits.
    this.sub = redis.duplicate();
    void this.sub.subscribe(`${this.p}:added`, `${this.p}:finished`);
    this.sub.on('message', (channel: string, msg: string) => {
      if (channel === `${this.p}:added`) this.events.emit('added');
      else this.events.emit('finished', Number(msg), undefined);
    });
  }

  private key(k: string): string {
    return `${this.p}:${k}`;
  }

  private bullOpts() {
    return { connection: this.r, prefix: `${this.p}-bull` };
  }

  private queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) this.queues.set(name, (q = new Queue(name, this.bullOpts())));
    return q;
  }

  private worker(name: string): Worker {
    let w = this.workers.get(name);
    if (!w) {
      // Manual fetching (getNextJob): our loop runs the job; the lock is renewed by extendLock. A stalled job goes
      // back to wait as often as it stalls: attempts are counted in the job record (MAX_ATTEMPTS).
      w = new Worker(name, null, { ...this.bullOpts(), autorun: false, lockDuration: this.o.lockMs, skipLockRenewal: true,
        stalledInterval: Math.max(250, Math.floor(this.o.lockMs / 2)), maxStalledCount: 1_000_000 });
      w.on('stalled', (id: string) => {
        this.stalled.push(jobIdOf(id));
        void this.r.publish(this.key('added'), 'stalled');
      });
      w.on('error', () => undefined); // connection errors surface on the next call
      void w.startStalledCheckTimer();
      this.workers.set(name, w);
    }
    return w;
  }

  async add(input: NewJob): Promise<Job> {
    const now = this.now();
    const model = input.request.model_id ?? '';
    const pinnedTo = input.pinnedTo ?? this.o.pinAllTo;
    const needs = needsOf(input.request);
    const qname = pinnedTo ? serverQueueName(pinnedTo) : modelQueueName(model, needsKey(needs));
    const record = { key_id: input.keyId, status: 'queued', request: JSON.stringify(input.request), base_url: input.baseUrl,
      file_prefix: input.filePrefix, step: 0, total_steps: input.request.num_inference_steps, attempts: 0, created_at: now, model,
      queue: qname, pinned_to: pinnedTo ?? '' };
    const id = await this.r.cnAdd(this.key('jobid'), this.key('queues'), this.key('queue-needs'), this.p, input.keyId, qname,
      pinnedTo || !needsKey(needs) ? '' : JSON.stringify(needs),
      ...Object.entries(record).flatMap(([k, v]) => [k, String(v)]));
    // The record is written before the job is dispatched: a job BullMQ hands out always has one.
    await this.queue(qname).add('generate', { id }, { jobId: bullId(id), removeOnComplete: true, removeOnFail: true });
    // Wakes this process's worker at once, and idle workers anywhere through Redis (not waited for: a worker that
    // misses it finds the job at its next poll).
    this.events.emit('added');
    this.r.publish(this.key('added'), String(id)).catch(() => undefined);
    return { id, keyId: input.keyId, status: 'queued', request: input.request, baseUrl: input.baseUrl, filePrefix: input.filePrefix,
      step: 0, totalSteps: input.request.num_inference_steps, attempts: 0, pinnedTo, createdAt: now };
  }

  async getJob(id: number): Promise<Job | undefined> {
    return jobOf(id, await this.r.hgetall(this.key(`job:${id}`)));
  }

  async getJobState(id: number): Promise<JobStatus | undefined> {
    return ((await this.r.hget(this.key(`job:${id}`), 'status')) as JobStatus | null) ?? undefined;
  }

  /**
   * The non-empty queues this worker pulls from, in order: its own; then the queues of models loaded here, then of
   * the other installed ones (a queue whose next job waited longer than affinityMaxWaitMs first, oldest first);
   * only queues whose base model and every needed ControlNet, LoRA and VAE are installed here. One round trip.
   */
  private async claimOrder(o: ClaimOptions): Promise<string[]> {
    const own = serverQueueName(o.server ?? o.worker);
    const flat = await this.r.cnCandidates(this.key('queues'), this.key('queue-needs'), `${this.p}-bull`, own);
    const queues: { name: string; needs: string; head: number }[] = [];
    for (let i = 0; i + 2 < flat.length; i += 3) queues.push({ name: String(flat[i]), needs: String(flat[i + 1]), head: Number(flat[i + 2]) });
    const m = o.models;
    const mine = queues.slice(1).filter((q) => !m || (m.installed.includes(baseOfQueue(q.name))
      && (!q.needs || !m.extras || firstMissing(m.extras, JSON.parse(q.needs) as ModelNeeds) === undefined)));
    // Each queue's BullMQ worker runs its stalled-job check (leases that expired go back to wait): made for every
    // queue this server may take from, empty or not.
    this.worker(own);
    for (const q of mine) this.worker(q.name);
    const waiting = (q: { head: number }) => q.head >= 0;
    const ownFirst = waiting(queues[0]!) ? [own] : [];
    if (!m) return [...ownFirst, ...mine.filter(waiting).map((q) => q.name)];
    const loaded = m.loaded.filter((b) => m.installed.includes(b));
    const rank = (q: { name: string }) => { const i = loaded.indexOf(baseOfQueue(q.name)); return i < 0 ? loaded.length : i; };
    const ordered = mine.filter(waiting).sort((a, b) => rank(a) - rank(b) || a.head - b.head);
    const maxWait = this.o.affinityMaxWaitMs ?? 10_000;
    // The most recently used model is never "starved": it is first anyway.
    const first = ordered.filter((q) => rank(q) > 0 && this.now() - q.head > maxWait).sort((a, b) => a.head - b.head);
    return [...ownFirst, ...first.map((q) => q.name), ...ordered.filter((q) => !first.includes(q)).map((q) => q.name)];
  }

  async moveToActive(o: ClaimOptions): Promise<ActiveJob | undefined> {
    for (const qname of await this.claimOrder(o)) {
      if (this.closed) return undefined;
      const w = this.worker(qname);
      const token = `${o.worker}:${Math.random().toString(36).slice(2)}`;
      const bull = (await w.getNextJob(token, { block: false })) as BullJob | undefined;
      if (!bull) continue;
      const id = jobIdOf(bull.id!);
      const [c, fields] = await this.r.cnClaim(this.key(`job:${id}`), o.worker, token, this.now(), MAX_ATTEMPTS);
      if (c === 0) {
        await bull.moveToCompleted(null, token, false).catch(() => undefined); // finished by an earlier run
        continue;
      }
      if (c === -1) {
        await this.finish(id, 'failed', '', `the job stopped its worker ${MAX_ATTEMPTS} times and was given up`, 500, undefined);
        await bull.moveToCompleted(null, token, false).catch(() => undefined);
        continue;
      }
      const h: Record<string, string> = {};
      for (let i = 0; i + 1 < fields!.length; i += 2) h[fields![i]!] = fields![i + 1]!;
      const job = jobOf(id, h)!;
      this.active.set(id, { bull, token, job });
      return { job, token };
    }
    return undefined;
  }

  async extendLock(id: number, token: string, lockMs: number): Promise<boolean> {
    const a = this.active.get(id);
    if (!a || a.token !== token) return false;
    if ((await this.r.hget(this.key(`job:${id}`), 'token')) !== token) return false;
    try {
      return (await a.bull.extendLock(token, lockMs)) === 1;
    } catch {
      return false;
    }
  }

  async updateProgress(id: number, token: string, step: number, totalSteps: number, eta?: RunnerEta): Promise<void> {
    await this.r.cnProgress(this.key(`job:${id}`), token, step, totalSteps, eta?.seconds ?? '', eta?.at ?? '');
  }

  private async finish(id: number, status: 'success' | 'failed', result: string, error: string, httpStatus: number,
    webhook: WebhookDelivery | undefined): Promise<boolean> {
    const w = webhook ? JSON.stringify({ url: webhook.url, body: JSON.stringify(webhook.body) }) : '';
    const at = this.now();
    const n = await this.r.cnFinish(this.key(`job:${id}`), this.key('webhooks:due'), this.key('webhookid'),
      status, result, error, httpStatus, at, id, w, this.p);
    if (n !== 1) return false;
    // A waiter in this process (the request was accepted here) gets the finished job at once, without reading it back.
    const a = this.active.get(id);
    if (a) {
      this.events.emit('finished', id, { ...a.job, status, result: result ? (JSON.parse(result) as JobResult) : undefined,
        error: error || undefined, errorStatus: status === 'failed' ? httpStatus : undefined, finishedAt: at } satisfies Job);
    }
    return true;
  }

  private async release(id: number, token: string): Promise<void> {
    const a = this.active.get(id);
    if (!a || a.token !== token) return;
    this.active.delete(id);
    await a.bull.moveToCompleted(null, token, false).catch(() => undefined); // lock lost: the stalled check already moved it
  }

  async moveToCompleted(id: number, token: string, result: JobResult, webhook?: WebhookDelivery): Promise<boolean> {
    const won = await this.finish(id, 'success', JSON.stringify(result), '', 0, webhook);
    await this.release(id, token);
    return won;
  }

  async moveToFailed(id: number, token: string, f: Failure, webhook?: WebhookDelivery): Promise<boolean> {
    const won = await this.finish(id, 'failed', '', f.message, f.httpStatus, webhook);
    await this.release(id, token);
    return won;
  }

  async moveToWait(id: number, token: string): Promise<void> {
    const a = this.active.get(id);
    this.active.delete(id);
    if ((await this.r.cnHandBack(this.key(`job:${id}`), token)) === 1 && a) {
      await a.bull.moveToWait(token).catch(() => undefined);
      await this.r.publish(this.key('added'), String(id));
    }
  }

  async moveStalledJobsToWait(): Promise<{ requeued: number[]; failed: number[] }> {
    // BullMQ's checker runs on its own timer in every worker; running it now as well makes this call deterministic.
    for (const w of this.workers.values()) {
      await (w as unknown as { moveStalledJobsToWait(): Promise<void> }).moveStalledJobsToWait().catch(() => undefined);
    }
    // The job record is left as it is: it may already be running again elsewhere, or finished (the first completion
    // wins). It stays "running" until the next claim (a fetch answers "processing" either way); the dead run's lock
    // is gone, so its extendLock fails.
    return { requeued: this.stalled.splice(0), failed: [] };
  }

  private async names(): Promise<string[]> {
    return this.r.smembers(this.key('queues'));
  }

  async getJobCounts(): Promise<JobCounts> {
    const all = await this.getJobCountsByModel();
    const out = { queued: 0, running: 0 };
    for (const c of Object.values(all)) {
      out.queued += c.queued;
      out.running += c.running;
    }
    return out;
  }

  async getJobCountsByModel(): Promise<Record<string, JobCounts>> {
    const out: Record<string, JobCounts> = {};
    const names = await this.names();
    const counts = await Promise.all(names.map((name) => this.queue(name).getJobCounts('wait', 'active', 'prioritized', 'delayed')));
    for (const [i, name] of names.entries()) {
      const c = counts[i]!;
      const label = name.startsWith('model.') ? baseOfQueue(name) : name;
      const e = (out[label] ??= { queued: 0, running: 0 });
      e.queued += (c.wait ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0);
      e.running += c.active ?? 0;
    }
    return out;
  }

  async ahead(id: number): Promise<number> {
    const per = await Promise.all((await this.names()).map(async (name) => {
      const [ids, c] = await Promise.all([this.r.lrange(`${this.p}-bull:${name}:wait`, 0, -1), this.queue(name).getJobCounts('active')]);
      return ids.filter((x) => jobIdOf(x) < id).length + (c.active ?? 0);
    }));
    return per.reduce((a, b) => a + b, 0);
  }

  async jobsAhead(id: number, limit = 1000): Promise<Job[]> {
    const running: number[] = [];
    const queued: number[] = [];
    for (const name of await this.names()) {
      running.push(...(await this.queue(name).getActive()).map((b) => jobIdOf(b.id!)).filter((x) => x !== id));
      queued.push(...(await this.r.lrange(`${this.p}-bull:${name}:wait`, 0, -1)).map(jobIdOf).filter((x) => x < id));
    }
    const ids = [...running.sort((a, b) => a - b), ...queued.sort((a, b) => a - b)].slice(0, limit);
    return (await Promise.all(ids.map((x) => this.getJob(x)))).filter((j): j is Job => !!j);
  }

  async pendingForKey(keyId: number): Promise<number> {
    return this.r.scard(this.key(`pending:${keyId}`));
  }


  async drain(reason: string, webhookFor: (job: Job) => WebhookDelivery | undefined): Promise<number[]> {
    const ids: number[] = [];
    for (const name of await this.names()) {
      for (const bull of await this.queue(name).getWaiting()) {
        const id = jobIdOf(bull.id!);
        const job = await this.getJob(id);
        if (!job || job.status !== 'queued') continue;
        // Failed first (with its webhook, atomically), then removed from dispatch: a worker that takes it meanwhile finds it finished.
        if (await this.finish(id, 'failed', '', reason, 503, webhookFor({ ...job, error: reason }))) ids.push(id);
        await bull.remove().catch(() => undefined);
      }
    }
    return ids.sort((a, b) => a - b);
  }

  async waitUntilFinished(id: number, ms: number): Promise<Job | undefined> {
    if (ms <= 0) return this.getJob(id);
    // Listening before the first read: a job that finishes in between is not missed.
    let last: Job | undefined;
    let done: Job | undefined;
    await new Promise<void>((resolve) => {
      const onFinished = (fid: number, job: Job | undefined) => { if (fid === id) finish(job); };
      // The status alone until it is finished (the record holds the request, images and all).
      const check = () => void this.getJobState(id).then(async (st) => {
        if (st === undefined || st === 'success' || st === 'failed') finish(last = await this.getJob(id));
      }).catch(() => undefined);
      const finish = (job?: Job) => {
        done ??= job;
        clearInterval(poll); clearTimeout(timer); this.events.off('finished', onFinished); resolve();
      };
      // The pub/sub message is the fast path; the poll covers a message lost to a reconnect.
      const poll = setInterval(check, this.o.pollMs ?? 1000);
      const timer = setTimeout(() => finish(), ms);
      this.events.on('finished', onFinished);
      check();
    });
    // Finished here (the completing process), read back (another server finished it), or as it is now (timed out).
    if (done) return done;
    return last && isFinished(last) ? last : this.getJob(id);
  }

  onAdded(fn: () => void): () => void {
    this.events.on('added', fn);
    return () => this.events.off('added', fn);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.workers.values()) await w.close(true).catch(() => undefined);
    for (const q of this.queues.values()) await q.close().catch(() => undefined);
    this.sub.disconnect();
    this.events.removeAllListeners();
  }
}

/** A job record (HGETALL) as a Job, or undefined when there is none. */
function jobOf(id: number, h: Record<string, string>): Job | undefined {
  if (!h.id) return undefined;
  const num = (v: string | undefined) => (v === undefined || v === '' ? undefined : Number(v));
  return {
    id, keyId: Number(h.key_id), status: h.status as JobStatus, request: JSON.parse(h.request!) as GenerateRequest,
    baseUrl: h.base_url!, filePrefix: h.file_prefix!, result: h.result ? (JSON.parse(h.result) as JobResult) : undefined,
    error: h.error || undefined, errorStatus: num(h.error_status), step: Number(h.step ?? 0), totalSteps: Number(h.total_steps ?? 0),
    attempts: Number(h.attempts ?? 0), worker: h.worker || undefined, pinnedTo: h.pinned_to || undefined, createdAt: Number(h.created_at),
    startedAt: num(h.started_at), finishedAt: num(h.finished_at),
    ...(num(h.eta_seconds) !== undefined && num(h.eta_at) !== undefined ? { eta: { seconds: num(h.eta_seconds)!, at: num(h.eta_at)! } } : {}),
  };
}
