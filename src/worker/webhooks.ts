// Webhook delivery: each delivery is a durable record in an outbox (a SQLite table on one machine, Redis in the
// pool), queued in the same transaction as the job's outcome, CLAIMED before it is sent (so that several
// processes polling one outbox never POST it twice), sent through the SSRF-safe client, retried with
// exponential backoff, and signed with HMAC-SHA256 of the body when a secret is set.
// A delivery may repeat only when the process that claimed it died after sending it (its claim then expires).
import { createHmac } from 'node:crypto';
import type { Db } from '../jobs/db.ts';
import { safeFetch, type SafeFetchOptions } from '../inputs/safe-fetch.ts';

export const SIGNATURE_HEADER = 'x-controlnet-signature';

export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** A claimed delivery. `body` is the JSON text exactly as it is POSTed. */
export interface ClaimedDelivery {
  id: number;
  jobId: number;
  url: string;
  body: string;
  attempts: number;
}

export interface DeliveryStatus {
  status: 'pending' | 'delivered' | 'dead';
  attempts: number;
  last_error: string | null;
}

/** Where deliveries wait. Claims are leases: a claimed delivery is not due again until `claimMs` has passed. */
export interface WebhookOutbox {
  /** Records a delivery, due now (outside a job completion: tests and tools; jobs queue theirs through the queue). */
  add(jobId: number, url: string, body: Record<string, unknown>, now: number): Promise<void>;
  /** Atomically takes up to `limit` due deliveries, each made not due until now + claimMs. */
  claimDue(now: number, limit: number, claimMs: number): Promise<ClaimedDelivery[]>;
  markDelivered(id: number, attempts: number): Promise<void>;
  /** `nextAt` undefined: given up (dead). */
  markFailed(id: number, attempts: number, error: string, nextAt: number | undefined): Promise<void>;
  status(jobId: number): Promise<DeliveryStatus[]>;
}

/** The outbox of one machine: the `webhooks` table of DATA_DIR's SQLite file. */
export class SqliteOutbox implements WebhookOutbox {
  constructor(private readonly db: Db) {}

  /** Inserts a delivery (also used inside the queue's completion transaction). */
  insert(jobId: number, url: string, body: Record<string, unknown>, now: number): void {
    this.db.prepare(`INSERT INTO webhooks (job_id, url, body, status, next_at, created_at) VALUES (?, ?, ?, 'pending', ?, ?)`)
      .run(jobId, url, JSON.stringify(body), now, now);
  }

  async add(jobId: number, url: string, body: Record<string, unknown>, now: number): Promise<void> {
    this.insert(jobId, url, body, now);
  }

  async claimDue(now: number, limit: number, claimMs: number): Promise<ClaimedDelivery[]> {
    // One UPDATE ... RETURNING: SQLite's write lock makes the claim atomic across processes.
    const rows = this.db.prepare(`UPDATE webhooks SET next_at = ? WHERE id IN
      (SELECT id FROM webhooks WHERE status = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?) RETURNING id, job_id, url, body, attempts`)
      .all(now + claimMs, now, limit) as { id: number; job_id: number; url: string; body: string; attempts: number }[];
    return rows.map((r) => ({ id: r.id, jobId: r.job_id, url: r.url, body: r.body, attempts: r.attempts }));
  }

  async markDelivered(id: number, attempts: number): Promise<void> {
    this.db.prepare(`UPDATE webhooks SET status = 'delivered', attempts = ?, last_error = NULL WHERE id = ?`).run(attempts, id);
  }

  async markFailed(id: number, attempts: number, error: string, nextAt: number | undefined): Promise<void> {
    this.db.prepare(`UPDATE webhooks SET status = ?, attempts = ?, last_error = ?, next_at = ? WHERE id = ?`)
      .run(nextAt === undefined ? 'dead' : 'pending', attempts, error, nextAt ?? 0, id);
  }

  async status(jobId: number): Promise<DeliveryStatus[]> {
    return this.db.prepare('SELECT status, attempts, last_error FROM webhooks WHERE job_id = ? ORDER BY id').all(jobId) as DeliveryStatus[];
  }
}

export interface WebhookOptions {
  secret?: string;
  maxAttempts: number;
  baseDelayMs: number;
  /** How long a claimed delivery stays claimed (longer than one POST may take). */
  claimMs?: number;
  fetch?: Omit<SafeFetchOptions, 'method' | 'body' | 'headers'>;
  now?: () => number;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

export class WebhookSender {
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;
  private again = false;
  private readonly now: () => number;

  constructor(readonly outbox: WebhookOutbox, private readonly opts: WebhookOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Records a delivery (durable) and tries it at once. */
  async enqueue(jobId: number, url: string, body: Record<string, unknown>): Promise<void> {
    await this.outbox.add(jobId, url, body, this.now());
    void this.deliverDue();
  }

  /** Delay before attempt n+1 after n failed attempts: base * 2^(n-1). */
  backoff(attempts: number): number {
    return this.opts.baseDelayMs * 2 ** Math.max(0, attempts - 1);
  }

  /** Claims and sends every due delivery once; returns how many were attempted. A call during a round runs one more round after it. */
  deliverDue(): Promise<number> {
    if (this.running) {
      this.again = true;
      return Promise.resolve(0);
    }
    this.running = (async () => {
      let n = 0;
      try {
        do {
          this.again = false;
          const due = await this.outbox.claimDue(this.now(), 50, this.opts.claimMs ?? 60_000);
          await Promise.all(due.map((r) => this.attempt(r)));
          n += due.length;
        } while (this.again);
      } catch (e) {
        this.opts.log?.('webhook outbox unavailable', { error: (e as Error).message });
      } finally {
        this.running = undefined;
      }
      return n;
    })();
    return this.running;
  }

  private async attempt(r: ClaimedDelivery): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.opts.secret) headers[SIGNATURE_HEADER] = signBody(this.opts.secret, r.body);
    let error: string | undefined;
    try {
      const res = await safeFetch(r.url, { timeoutMs: 10_000, maxBytes: 64 * 1024, maxRedirects: 0, ...this.opts.fetch, method: 'POST', body: r.body, headers });
      if (res.status < 200 || res.status >= 300) error = `HTTP ${res.status}`;
    } catch (e) {
      error = (e as Error).message;
    }
    const attempts = r.attempts + 1;
    if (!error) return this.outbox.markDelivered(r.id, attempts);
    const dead = attempts >= this.opts.maxAttempts;
    await this.outbox.markFailed(r.id, attempts, error, dead ? undefined : this.now() + this.backoff(attempts));
    this.opts.log?.(dead ? 'webhook given up' : 'webhook failed, will retry', { job: r.jobId, attempts, error });
  }

  /** Polls for due deliveries (retries, and those other processes queued) until stop(). */
  start(intervalMs = 500): void {
    this.timer ??= setInterval(() => void this.deliverDue(), intervalMs);
    this.timer.unref();
  }

  /** Stops polling and waits for a round in flight. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  status(jobId: number): Promise<DeliveryStatus[]> {
    return this.outbox.status(jobId);
  }
}
