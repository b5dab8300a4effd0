// Webhook delivery: each delivery is a row in SQLite (so a restart keeps pending ones), POSTed through the
// SSRF-safe client, retried with exponential backoff, signed with HMAC-SHA256 of the body when a secret is set.
import { createHmac } from 'node:crypto';
import type { Db } from '../jobs/db.ts';
import { safeFetch, type SafeFetchOptions } from '../inputs/safe-fetch.ts';

export const SIGNATURE_HEADER = 'x-controlnet-signature';

export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export interface WebhookOptions {
  secret?: string;
  maxAttempts: number;
  baseDelayMs: number;
  fetch?: Omit<SafeFetchOptions, 'method' | 'body' | 'headers'>;
  now?: () => number;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

interface Row { id: number; job_id: number; url: string; body: string; attempts: number }

export class WebhookSender {
  private timer?: NodeJS.Timeout;
  private running = false;
  private readonly now: () => number;

  constructor(private readonly db: Db, private readonly opts: WebhookOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Records a delivery (durable) and tries it at once. */
  enqueue(jobId: number, url: string, body: Record<string, unknown>): void {
    this.db.prepare(`INSERT INTO webhooks (job_id, url, body, status, next_at, created_at) VALUES (?, ?, ?, 'pending', ?, ?)`)
      .run(jobId, url, JSON.stringify(body), this.now(), this.now());
    void this.deliverDue();
  }

  /** Delay before attempt n+1 after n failed attempts: base * 2^(n-1). */
  backoff(attempts: number): number {
    return this.opts.baseDelayMs * 2 ** Math.max(0, attempts - 1);
  }

  /** Sends every due delivery once; returns how many were attempted. */
  async deliverDue(): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    try {
      const due = this.db.prepare(`SELECT id, job_id, url, body, attempts FROM webhooks WHERE status = 'pending' AND next_at <= ? ORDER BY next_at LIMIT 50`)
        .all(this.now()) as Row[];
      await Promise.all(due.map((r) => this.attempt(r)));
      return due.length;
    } finally {
      this.running = false;
    }
  }

  private async attempt(r: Row): Promise<void> {
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
    if (!error) {
      this.db.prepare(`UPDATE webhooks SET status = 'delivered', attempts = ?, last_error = NULL WHERE id = ?`).run(attempts, r.id);
      return;
    }
    const dead = attempts >= this.opts.maxAttempts;
    this.db.prepare(`UPDATE webhooks SET status = ?, attempts = ?, last_error = ?, next_at = ? WHERE id = ?`)
      .run(dead ? 'dead' : 'pending', attempts, error, this.now() + this.backoff(attempts), r.id);
    this.opts.log?.(dead ? 'webhook given up' : 'webhook failed, will retry', { job: r.job_id, attempts, error });
  }

  /** Polls for due deliveries (retries) until stop(). */
  start(intervalMs = 500): void {
    this.timer ??= setInterval(() => void this.deliverDue(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  status(jobId: number): { status: string; attempts: number; last_error: string | null }[] {
    return this.db.prepare('SELECT status, attempts, last_error FROM webhooks WHERE job_id = ? ORDER BY id').all(jobId) as
      { status: string; attempts: number; last_error: string | null }[];
  }
}
