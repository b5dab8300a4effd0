// API keys: random 256-bit secrets, stored as their SHA-256 (a fast hash is enough for high-entropy keys) and
// compared in constant time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../jobs/db.ts';

export interface ApiKey {
  id: number;
  admin: boolean;
  label?: string;
}

/** The keys a server accepts: this machine's (KeyStore) or the pool's (cluster/pool-keys.ts). */
export interface Keys {
  /** Creates a key and returns its secret (shown once). */
  create(opts?: { admin?: boolean; label?: string }): { key: string; id: number };
  /** Adds a given secret (CONTROLNET_API_KEY). */
  add(key: string, opts?: { admin?: boolean; label?: string }): number;
  /** The key's record, or undefined. */
  verify(key: string | undefined): Promise<ApiKey | undefined>;
  count(): number;
}

export const hashKey = (key: string) => createHash('sha256').update(key, 'utf8').digest('hex');
const hash = hashKey;


export class KeyStore implements Keys {
  constructor(private readonly db: Db) {}

  /** Creates a key and returns its secret (shown once; only the hash is kept). */
  create(opts: { admin?: boolean; label?: string } = {}): { key: string; id: number } {
    const key = `cn_${randomBytes(32).toString('base64url')}`;
    const id = this.add(key, opts);
    return { key, id };
  }

  /** Adds a given secret (CONTROLNET_API_KEY); a key already stored keeps its row. */
  add(key: string, opts: { admin?: boolean; label?: string } = {}): number {
    if (key.length < 16) throw new Error('an API key must be at least 16 characters');
    const h = hash(key);
    this.db.prepare('INSERT INTO api_keys (hash, admin, label, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (hash) DO UPDATE SET admin = MAX(admin, excluded.admin), revoked = 0')
      .run(h, opts.admin ? 1 : 0, opts.label ?? null, Date.now());
    return (this.db.prepare('SELECT id FROM api_keys WHERE hash = ?').get(h) as { id: number }).id;
  }

  /** The key's record, or undefined. The lookup is by hash; the final compare is constant-time. */
  async verify(key: string | undefined): Promise<ApiKey | undefined> {
    return this.verifySync(key);
  }

  verifySync(key: string | undefined): ApiKey | undefined {
    if (!key || key.length > 512) return undefined;
    const h = hash(key);
    const row = this.db.prepare('SELECT id, hash, admin, label FROM api_keys WHERE hash = ? AND revoked = 0').get(h) as
      { id: number; hash: string; admin: number; label: string | null } | undefined;
    if (!row || !timingSafeEqual(Buffer.from(row.hash, 'hex'), Buffer.from(h, 'hex'))) return undefined;
    return { id: row.id, admin: row.admin === 1, label: row.label ?? undefined };
  }

  /** Every live key's hash and role (the pool publishes them). */
  hashes(): { hash: string; admin: boolean }[] {
    return (this.db.prepare('SELECT hash, admin FROM api_keys WHERE revoked = 0').all() as { hash: string; admin: number }[])
      .map((r) => ({ hash: r.hash, admin: r.admin === 1 }));
  }

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM api_keys WHERE revoked = 0').get() as { n: number }).n;
  }
}
