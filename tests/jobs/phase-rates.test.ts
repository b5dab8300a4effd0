// The eta's rates in the DATA_DIR database: kept across opens, under the phases' units version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../../src/jobs/db.ts';
import { PHASE_UNITS_VERSION, SqliteRateStore } from '../../src/jobs/phase-rates.ts';
import { EtaModel } from '../../src/worker/eta.ts';

test('learned rates survive a reopen; rates kept in other units are not read', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-rates-'));
  try {
    const db = openDb(dir);
    const eta = new EtaModel({ store: new SqliteRateStore(db) });
    eta.observe({ phase: 'load', units: 100, seconds: 3, key: 'unet', model: 'm', width: 64, height: 64 });
    // a row of another units version (an older or newer release) with the same key
    db.prepare('INSERT INTO phase_rates (key, seconds, units, updated_at) VALUES (?, 1000, 1, 0)').run(`v${PHASE_UNITS_VERSION + 1}/step`);
    db.close();
    const again = openDb(dir);
    const restored = new EtaModel({ store: new SqliteRateStore(again) });
    assert.equal(restored.rate('load', 'unet'), 0.03);
    assert.equal(restored.rate('load'), 0.03);
    assert.ok(!restored.measured('step'), 'the other version\'s step rate is not read');
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
