// The memory budget on what the process really holds: a sequence of requests on the tiny models (ControlNets,
// VAEs, img2img) in a child process started as the README says (MALLOC_MMAP_THRESHOLD_ set), once with room for
// everything and once under a small budget. Under the budget, sessions are evicted and the process's measured
// RSS after every request stays under it; with room, the same sequence ends above that budget.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { tinyDataDir } from '../../support/tiny-models.ts';

const dataDir = tinyDataDir();
after(() => rmSync(dataDir, { recursive: true, force: true }));
const CHILD = join(import.meta.dirname, '..', '..', 'support', 'memory-budget-child.ts');

interface Line { name?: string; rss?: number; peak?: number; evictions?: number; loaded?: string[]; startRss?: number; budget?: number }

function drive(headroomMB: number): { budget: number; startRss: number; requests: Line[] } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CHILD, dataDir, String(headroomMB), '64'], {
    env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '65536' }, encoding: 'utf8', timeout: 240_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Line);
  return { budget: lines[0]!.budget!, startRss: lines[0]!.startRss!, requests: lines.slice(1) };
}

test('under a small budget, evictions keep the measured resident memory under it after every request', () => {
  const headroom = 60;
  const tight = drive(headroom);
  const roomy = drive(10_000);
  const roomyEnd = roomy.requests.at(-1)!.rss! - roomy.startRss;
  // the same sequence with room for everything grows past the headroom: the budget below is a real constraint
  assert.ok(roomyEnd > headroom, `with room the sequence holds ${roomyEnd} MB over its start (needs > ${headroom})`);
  assert.equal(roomy.requests.at(-1)!.evictions, 0);
  assert.ok(tight.requests.at(-1)!.evictions! > 0, 'sessions were evicted');
  for (const r of tight.requests) assert.ok(r.rss! <= tight.budget, `${r.name}: rss ${r.rss} MB over the budget ${tight.budget} MB`);
});
