// The eta's learned rates (worker/eta.ts: decayed sums of seconds and units per engine phase) in the DATA_DIR
// database, so that a restarted server answers its first eta from what it measured before, not from priors.
// They describe this machine, so they stay in its own DATA_DIR in a pool too.
import type { Db } from './db.ts';
import type { RateStore, RateSums } from '../worker/eta.ts';

/**
 * The version of the phases' units (engine/pipeline/phases.ts): rates are kept under it, so that a release that
 * changes a unit starts from the priors instead of reading seconds per some other unit.
 */
export const PHASE_UNITS_VERSION = 1;
const PREFIX = `v${PHASE_UNITS_VERSION}/`;

export class SqliteRateStore implements RateStore {
  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  load(): Map<string, RateSums> {
    const rows = this.db.prepare('SELECT key, seconds, units FROM phase_rates WHERE substr(key, 1, ?) = ?').all(PREFIX.length, PREFIX) as { key: string; seconds: number; units: number }[];
    return new Map(rows.filter((r) => r.units > 0 && r.seconds >= 0).map((r) => [r.key.slice(PREFIX.length), { seconds: r.seconds, units: r.units }]));
  }

  save(key: string, sums: RateSums): void {
    this.db.prepare(`INSERT INTO phase_rates (key, seconds, units, updated_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (key) DO UPDATE SET seconds = excluded.seconds, units = excluded.units, updated_at = excluded.updated_at`)
      .run(PREFIX + key, sums.seconds, sums.units, this.now());
  }
}
