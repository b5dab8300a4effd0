// The embedded store of one machine: one SQLite file (WAL) under DATA_DIR holding jobs, webhook deliveries, keys
// and the eta's learned seconds per unit of each engine phase (this machine's, also in a pool).
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export type Db = Database.Database;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key_id INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued','running','success','failed')),
  request TEXT NOT NULL,
  base_url TEXT NOT NULL,
  file_prefix TEXT NOT NULL,
  result TEXT,
  error TEXT,
  error_status INTEGER,
  step INTEGER NOT NULL DEFAULT 0,
  total_steps INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  worker TEXT,
  lease_token TEXT,
  lease_until INTEGER,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, id);
CREATE INDEX IF NOT EXISTS jobs_key_status ON jobs (key_id, status);
CREATE TABLE IF NOT EXISTS webhooks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id INTEGER NOT NULL,
  url TEXT NOT NULL,
  body TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending','delivered','dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL,
  last_error TEXT,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks (status, next_at);
CREATE TABLE IF NOT EXISTS phase_rates (
  key TEXT PRIMARY KEY,
  seconds REAL NOT NULL,
  units REAL NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  hash TEXT NOT NULL UNIQUE,
  admin INTEGER NOT NULL DEFAULT 0,
  label TEXT,
  created_at INTEGER NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0
);
`;

export function openDb(dataDir: string, file = 'controlnet.db'): Db {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, file));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL'); // WAL + NORMAL: a committed job survives a process crash
  db.pragma('busy_timeout = 5000'); // a separate `controlnet worker` process may share the file
  db.exec(SCHEMA);
  migrate(db);
  return db;
}

/** Columns added after the first release (a DATA_DIR from an older version gets them on open). */
function migrate(db: Db): void {
  const cols = new Set((db.prepare('PRAGMA table_info(jobs)').all() as { name: string }[]).map((c) => c.name));
  // Leases (jobs/queue.ts): the running job's token and when its lease expires (ms since epoch).
  if (!cols.has('lease_token')) db.exec('ALTER TABLE jobs ADD COLUMN lease_token TEXT');
  if (!cols.has('lease_until')) db.exec('ALTER TABLE jobs ADD COLUMN lease_until INTEGER');
  db.exec('CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (status, lease_until)');
  // The runner's eta with its progress (Job.eta): seconds left as of eta_at (ms since epoch).
  if (!cols.has('eta_seconds')) db.exec('ALTER TABLE jobs ADD COLUMN eta_seconds REAL');
  if (!cols.has('eta_at')) db.exec('ALTER TABLE jobs ADD COLUMN eta_at INTEGER');
}
