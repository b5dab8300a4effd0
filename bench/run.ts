// `npm run bench`: runs the benchmarks, each in its own process, one after the other, and prints a summary.
// By default only those that need no Python (the torch comparisons need the oracle virtualenv: README "Benchmarks").
//   npm run bench                      # api-overhead, graph-build-load
//   npm run bench -- api-overhead      # the named ones (any of the list below)
//   npm run bench -- --torch           # also unet-step (ours against diffusers on torch) and lora-tome after it
//   npm run bench -- --list
// Each benchmark prints ratios against a reference measured in the same run; nothing here is a pass/fail check.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

interface Bench { name: string; what: string; python: boolean; args: (ctx: { fullUnetDir: string }) => string[] }

const BENCHES: Bench[] = [
  { name: 'api-overhead', what: 'API overhead per request beyond engine time, fetch requests/s (tiny demo model, ~1 min)', python: false, args: () => [] },
  { name: 'graph-build-load', what: 'build, write and load a 3.4 GB fp32 graph, first and second start (~7 GB disk, minutes)', python: false, args: () => [] },
  { name: 'unet-step', what: 'one CFG step of full-size SD 1.5 UNet + ControlNet, ours vs diffusers on torch CPU (needs the oracle venv; ~5 GB, many minutes)',
    python: true, args: ({ fullUnetDir }) => ['--keep', fullUnetDir] },
  { name: 'lora-tome', what: 'LoRA-set switch and ToMe speed-up on the full-size UNet (runs after unet-step, reusing its weights)',
    python: true, args: ({ fullUnetDir }) => [fullUnetDir] },
];

const argv = process.argv.slice(2);
if (argv.includes('--list')) {
  for (const b of BENCHES) process.stdout.write(`${b.name.padEnd(18)}${b.python ? '[torch] ' : ''}${b.what}\n`);
  process.exit(0);
}
const named = argv.filter((a) => !a.startsWith('--'));
const unknown = named.filter((n) => !BENCHES.some((b) => b.name === n));
if (unknown.length) {
  process.stderr.write(`error: unknown benchmark ${unknown.join(', ')}; known: ${BENCHES.map((b) => b.name).join(', ')}\n`);
  process.exit(2);
}
// lora-tome reuses the full-size UNet that unet-step writes, so it never runs without it.
if (named.includes('lora-tome') && !named.includes('unet-step')) named.push('unet-step');
const chosen = named.length ? BENCHES.filter((b) => named.includes(b.name)) : BENCHES.filter((b) => !b.python || argv.includes('--torch'));
const venv = process.env.ORACLE_VENV ?? join(homedir(), '.cache', 'controlnet-oracle-venv');
if (chosen.some((b) => b.python) && !existsSync(join(venv, 'bin', 'python'))) {
  process.stderr.write(`error: the torch comparisons need the oracle virtualenv at ${venv}; create it with: tools/oracle/run.sh --venv-only\n`);
  process.exit(2);
}

const fullUnetDir = mkdtempSync(join(tmpdir(), 'bench-full-unet-'));
const results: { name: string; status: number | null; seconds: number }[] = [];
try {
  for (const b of chosen) {
    process.stdout.write(`\n== ${b.name}: ${b.what}\n`);
    const t0 = performance.now();
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, `${b.name}.ts`), ...b.args({ fullUnetDir })], { stdio: 'inherit' });
    results.push({ name: b.name, status: r.status, seconds: (performance.now() - t0) / 1000 });
  }
} finally {
  rmSync(fullUnetDir, { recursive: true, force: true });
}
process.stdout.write('\n== summary\n');
for (const r of results) process.stdout.write(`${r.name.padEnd(18)}${r.status === 0 ? 'ran' : `FAILED (exit ${r.status})`} in ${r.seconds.toFixed(0)} s\n`);
process.exit(results.every((r) => r.status === 0) ? 0 : 1);
