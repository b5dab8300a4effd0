// The eta's learned rates (worker/eta.ts: decayed sums of seconds and units per engine phase) in the DATA_DIR
// database, so that a restarted server answers its first eta from what it measured before, not from priors.
// They describe this machine, so they stay in its own DATA_DIR in a pool too.
import type { Db } from './db.ts';
import type { RateStore, RateSums } from '../worker/eta.ts';

export class SqliteRateStore implements RateStore {
  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  load(): Map<string, RateSums> {
    const rows = this.db.prepare('SELECT key, seconds, units FROM phase_rates').all() as { key: string; seconds: number; units: number }[];
    return new Map(rows.filter((r) => r.units > 0 && r.seconds >= 0).map((r) => [r.key, { seconds: r.seconds, units: r.units }]));
  }

  save(key: string, sums: RateSums): void {
    this.db.prepare(`INSERT INTO phase_rates (key, seconds, units, updated_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (key) DO UPDATE SET seconds = excluded.seconds, units = excluded.units, updated_at = excluded.updated_at`)
      .run(key, sums.seconds, sums.units, this.now());
  }
}
