// The durable job queue of one machine, in SQLite (DATA_DIR/controlnet.db): an accepted job is committed before
// the client hears of it; a claim is one atomic UPDATE ... RETURNING that gives the job a lease (safe with
// several worker processes on one DATA_DIR: `serve --no-worker` + `worker`); only a job whose lease expired goes
// back to the queue; completion is conditional on the job being unfinished and queues its webhook in the same
// transaction.
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Db } from './db.ts';
import type { Job, JobResult, JobStatus, RunnerEta } from './job.ts';
import { isFinished, MAX_ATTEMPTS, type ActiveJob, type ClaimOptions, type Failure, type JobCounts, type JobQueue, type NewJob,
  type WebhookDelivery } from './queue.ts';
import type { GenerateRequest } from '../request/schema.ts';
import { SqliteOutbox } from '../worker/webhooks.ts';

export { MAX_ATTEMPTS } from './queue.ts';

interface Row {
  id: number; key_id: number; status: JobStatus; request: string; base_url: string; file_prefix: string;
  result: string | null; error: string | null; error_status: number | null; step: number; total_steps: number; attempts: number;
  worker: string | null; created_at: number; started_at: number | null; finished_at: number | null;
  eta_seconds: number | null; eta_at: number | null;
}

function toJob(r: Row): Job {
  return {
    id: r.id, keyId: r.key_id, status: r.status, request: JSON.parse(r.request) as GenerateRequest,
    baseUrl: r.base_url, filePrefix: r.file_prefix,
    result: r.result ? (JSON.parse(r.result) as JobResult) : undefined, error: r.error ?? undefined, errorStatus: r.error_status ?? undefined,
    step: r.step, totalSteps: r.total_steps, attempts: r.attempts, worker: r.worker ?? undefined, createdAt: r.created_at,
    startedAt: r.started_at ?? undefined, finishedAt: r.finished_at ?? undefined,
    ...(r.eta_seconds !== null && r.eta_at !== null ? { eta: { seconds: r.eta_seconds, at: r.eta_at } } : {}),
  };
}

export class SqliteQueue implements JobQueue {
  readonly backend = 'sqlite' as const;
  /** 'added' when a job arrives; 'finished' (id) when one ends. In-process only; other processes poll. */
  private readonly events = new EventEmitter();
  readonly outbox: SqliteOutbox;

  constructor(private readonly db: Db, private readonly now: () => number = Date.now, private readonly pollMs = 200) {
    this.events.setMaxListeners(0);
    this.outbox = new SqliteOutbox(db);
  }

  async add(input: NewJob): Promise<Job> {
    const row = this.db.prepare(`INSERT INTO jobs (key_id, status, request, base_url, file_prefix, total_steps, created_at)
      VALUES (?, 'queued', ?, ?, ?, ?, ?) RETURNING *`)
      .get(input.keyId, JSON.stringify(input.request), input.baseUrl, input.filePrefix, input.request.num_inference_steps, this.now()) as Row;
    this.events.emit('added', row.id);
    return toJob(row);
  }

  /** Synchronous read (one machine only). */
  get(id: number): Job | undefined {
    const row = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as Row | undefined;
    return row && toJob(row);
  }

  async getJob(id: number): Promise<Job | undefined> {
    return this.get(id);
  }

  async getJobState(id: number): Promise<Job['status'] | undefined> {
    return (this.db.prepare('SELECT status FROM jobs WHERE id = ?').get(id) as { status: Job['status'] } | undefined)?.status;
  }

  async moveToActive(o: ClaimOptions): Promise<ActiveJob | undefined> {
    const token = randomBytes(12).toString('hex');
    const now = this.now();
    const row = this.db.prepare(`UPDATE jobs SET status = 'running', worker = ?, started_at = ?, attempts = attempts + 1, step = 0,
        eta_seconds = NULL, eta_at = NULL, lease_token = ?, lease_until = ?
      WHERE id = (SELECT id FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1) RETURNING *`)
      .get(o.worker, now, token, now + o.lockMs) as Row | undefined;
    return row && { job: toJob(row), token };
  }

  async extendLock(id: number, token: string, lockMs: number): Promise<boolean> {
    return this.db.prepare(`UPDATE jobs SET lease_until = ? WHERE id = ? AND status = 'running' AND lease_token = ?`)
      .run(this.now() + lockMs, id, token).changes === 1;
  }

  async updateProgress(id: number, token: string, step: number, totalSteps: number, eta?: RunnerEta): Promise<void> {
    this.db.prepare(`UPDATE jobs SET step = ?, total_steps = ?, eta_seconds = ?, eta_at = ? WHERE id = ? AND status = 'running' AND lease_token = ?`)
      .run(step, totalSteps, eta?.seconds ?? null, eta?.at ?? null, id, token);
  }

  /** The first completion of an unfinished job wins, whichever run it comes from (a second run gives the same images: same seed). */
  private finish(id: number, set: string, args: unknown[], webhook: WebhookDelivery | undefined): boolean {
    const done = this.db.transaction(() => {
      const n = this.db.prepare(`UPDATE jobs SET ${set}, finished_at = ?, lease_token = NULL, lease_until = NULL
        WHERE id = ? AND status IN ('queued','running')`).run(...args, this.now(), id).changes;
      if (n === 1 && webhook) this.outbox.insert(id, webhook.url, webhook.body, this.now());
      return n === 1;
    })();
    if (done) this.events.emit('finished', id);
    return done;
  }

  async moveToCompleted(id: number, _token: string, result: JobResult, webhook?: WebhookDelivery): Promise<boolean> {
    return this.finish(id, `status = 'success', result = ?`, [JSON.stringify(result)], webhook);
  }

  async moveToFailed(id: number, _token: string, f: Failure, webhook?: WebhookDelivery): Promise<boolean> {
    return this.finish(id, `status = 'failed', error = ?, error_status = ?`, [f.message, f.httpStatus], webhook);
  }

  async moveToWait(id: number, token: string): Promise<void> {
    const n = this.db.prepare(`UPDATE jobs SET status = 'queued', worker = NULL, step = 0, lease_token = NULL, lease_until = NULL,
      attempts = MAX(0, attempts - 1) WHERE id = ? AND status = 'running' AND lease_token = ?`).run(id, token).changes;
    if (n) this.events.emit('added', id);
  }

  async moveStalledJobsToWait(): Promise<{ requeued: number[]; failed: number[] }> {
    const now = this.now();
    const r = this.db.transaction(() => {
      const failed = this.db.prepare(`UPDATE jobs SET status = 'failed', finished_at = ?, error_status = 500, lease_token = NULL, lease_until = NULL,
        error = 'the job stopped its worker ' || attempts || ' times and was given up'
        WHERE status = 'running' AND lease_until < ? AND attempts >= ? RETURNING id`).all(now, now, MAX_ATTEMPTS) as { id: number }[];
      const requeued = this.db.prepare(`UPDATE jobs SET status = 'queued', worker = NULL, step = 0, lease_token = NULL, lease_until = NULL
        WHERE status = 'running' AND (lease_until IS NULL OR lease_until < ?) RETURNING id`).all(now) as { id: number }[];
      return { requeued: requeued.map((x) => x.id), failed: failed.map((x) => x.id) };
    })();
    for (const id of r.failed) this.events.emit('finished', id);
    if (r.requeued.length) this.events.emit('added');
    return r;
  }

  async ahead(id: number): Promise<number> {
    const r = this.db.prepare(`SELECT
      (SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND id < ?) + (SELECT COUNT(*) FROM jobs WHERE status = 'running' AND id != ?) AS n`)
      .get(id, id) as { n: number };
    return r.n;
  }

  async jobsAhead(id: number, limit = 1000): Promise<Job[]> {
    const rows = this.db.prepare(`SELECT * FROM jobs WHERE (status = 'running' AND id != ?) OR (status = 'queued' AND id < ?)
      ORDER BY status = 'queued', id LIMIT ?`).all(id, id, limit) as Row[];
    return rows.map(toJob);
  }

  async pendingForKey(keyId: number): Promise<number> {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM jobs WHERE key_id = ? AND status IN ('queued','running')`).get(keyId) as { n: number }).n;
  }

  /** Synchronous counts (the Prometheus gauge reads them). */
  depth(): JobCounts {
    const rows = this.db.prepare(`SELECT status, COUNT(*) AS n FROM jobs WHERE status IN ('queued','running') GROUP BY status`).all() as { status: string; n: number }[];
    return { queued: rows.find((r) => r.status === 'queued')?.n ?? 0, running: rows.find((r) => r.status === 'running')?.n ?? 0 };
  }

  async getJobCounts(): Promise<JobCounts> {
    return this.depth();
  }

  async getJobCountsByModel(): Promise<Record<string, JobCounts>> {
    const rows = this.db.prepare(`SELECT json_extract(request, '$.model_id') AS m, status, COUNT(*) AS n FROM jobs
      WHERE status IN ('queued','running') GROUP BY m, status`).all() as { m: string | null; status: 'queued' | 'running'; n: number }[];
    const out: Record<string, JobCounts> = {};
    for (const r of rows) {
      const c = (out[r.m ?? ''] ??= { queued: 0, running: 0 });
      c[r.status] = r.n;
    }
    return out;
  }

  async drain(reason: string, webhookFor: (job: Job) => WebhookDelivery | undefined): Promise<number[]> {
    const ids = this.db.transaction(() => {
      const rows = this.db.prepare(`UPDATE jobs SET status = 'failed', error = ?, error_status = 503, finished_at = ? WHERE status = 'queued' RETURNING *`)
        .all(reason, this.now()) as Row[];
      for (const r of rows) {
        const w = webhookFor(toJob(r));
        if (w) this.outbox.insert(r.id, w.url, w.body, this.now());
      }
      return rows.map((r) => r.id);
    })();
    for (const id of ids) this.events.emit('finished', id);
    return ids;
  }


  async waitUntilFinished(id: number, ms: number): Promise<Job | undefined> {
    let job = this.get(id);
    if (isFinished(job) || ms <= 0) return job;
    await new Promise<void>((resolve) => {
      const events = this.events;
      // Event for jobs run in this process; polling for jobs run by a separate worker process.
      const onFinished = (fid: number) => { if (fid === id) finish(); };
      const finish = () => { clearInterval(poll); clearTimeout(timer); events.off('finished', onFinished); resolve(); };
      const poll = setInterval(() => { if (isFinished(this.get(id))) finish(); }, this.pollMs);
      const timer = setTimeout(finish, ms);
      events.on('finished', onFinished);
    });
    job = this.get(id);
    return job;
  }

  onAdded(fn: () => void): () => void {
    this.events.on('added', fn);
    return () => this.events.off('added', fn);
  }

  async close(): Promise<void> {
    this.events.removeAllListeners();
  }
}
