// API keys: random 256-bit secrets, stored as their SHA-256 (a fast hash is enough for high-entropy keys) and
// compared in constant time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../jobs/db.ts';

/** A key that breaks a rule (too short): the CLI prints its message as one line. */
export class KeyRuleError extends Error {}

/** The shortest key accepted (CONTROLNET_API_KEY or a given one); generated keys have 256 bits. */
export const MIN_KEY_LENGTH = 16;

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

  /** Adds a given secret (CONTROLNET_API_KEY); a key already stored keeps its row. Throws KeyRuleError when it is too short. */
  add(key: string, opts: { admin?: boolean; label?: string } = {}): number {
    if (key.length < MIN_KEY_LENGTH) {
      throw new KeyRuleError(`${opts.label ?? 'an API key'} must be at least ${MIN_KEY_LENGTH} characters (it has ${key.length})`);
    }
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

  /** Every key, newest last: id, admin, label, created (ms since epoch), revoked. Secrets are not kept, so not shown. */
  list(): { id: number; admin: boolean; label: string | null; createdAt: number; revoked: boolean }[] {
    const rows = this.db.prepare('SELECT id, admin, label, created_at, revoked FROM api_keys ORDER BY id').all() as
      { id: number; admin: number; label: string | null; created_at: number; revoked: number }[];
    return rows.map((r) => ({ id: r.id, admin: r.admin === 1, label: r.label, createdAt: r.created_at, revoked: r.revoked === 1 }));
  }

  /** Revokes the key with this id (it stops working at once); false when there is no such key or it was revoked. */
  revoke(id: number): boolean {
    return this.db.prepare('UPDATE api_keys SET revoked = 1 WHERE id = ? AND revoked = 0').run(id).changes > 0;
  }

  /** The hash of the key with this id (revoked or not), for the pool to withdraw it. */
  hashOf(id: number): string | undefined {
    return (this.db.prepare('SELECT hash FROM api_keys WHERE id = ?').get(id) as { hash: string } | undefined)?.hash;
  }

  /** The hashes of revoked keys (the pool withdraws them at join, so a key revoked offline stops everywhere). */
  revokedHashes(): string[] {
    return (this.db.prepare('SELECT hash FROM api_keys WHERE revoked = 1').all() as { hash: string }[]).map((r) => r.hash);
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
