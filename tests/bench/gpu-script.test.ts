// bench/gpu.sh on a machine without its packed folder: it must stop at once and say what is missing and how to get
// it (the GPU machine has no network, so a half-carried pack has to fail before anything runs). The whole flow is
// exercised by `bench/gpu.sh --cpu-smoke` after bench/gpu/pack.sh (needs registry access; not run in CI).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const script = join(import.meta.dirname, '..', '..', 'bench', 'gpu.sh');

test('bench/gpu.sh without .gpu/ names every missing piece and bench/gpu/pack.sh', () => {
  const pack = mkdtempSync(join(tmpdir(), 'gpu-pack-'));
  try {
    const r = spawnSync('bash', [script, '--check'], { env: { ...process.env, GPU_PACK: pack }, encoding: 'utf8' });
    assert.equal(r.status, 1);
    for (const f of ['node.xz', 'libonnxruntime.xz', 'ort-js.tar.xz', 'engine-step.mjs', 'diffusers-*.whl', 'importlib_metadata-*.whl', 'libvulkan1_*.deb']) {
      assert.ok(r.stderr.includes(f), `stderr names ${f}: ${r.stderr}`);
    }
    assert.match(r.stderr, /Run bench\/gpu\/pack\.sh on a connected x86-64 machine/);
    // a partly packed folder names only what is still missing
    writeFileSync(join(pack, 'node.xz'), 'x');
    mkdirSync(join(pack, 'wheels'));
    writeFileSync(join(pack, 'wheels', 'diffusers-0.42.1-py3-none-any.whl'), 'x');
    const r2 = spawnSync('bash', [script, '--check'], { env: { ...process.env, GPU_PACK: pack }, encoding: 'utf8' });
    assert.equal(r2.status, 1);
    assert.ok(!r2.stderr.includes('node.xz') && !r2.stderr.includes('diffusers-*.whl') && r2.stderr.includes('libonnxruntime.xz'), r2.stderr);
  } finally {
    rmSync(pack, { recursive: true, force: true });
  }
});

test('bench/gpu.sh --diagnose also needs the diagnose bundle', () => {
  const pack = mkdtempSync(join(tmpdir(), 'gpu-pack-'));
  try {
    const r = spawnSync('bash', [script, '--check', '--diagnose'], { env: { ...process.env, GPU_PACK: pack }, encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.ok(r.stderr.includes('engine-diagnose.mjs'), r.stderr);
    const plain = spawnSync('bash', [script, '--check'], { env: { ...process.env, GPU_PACK: pack }, encoding: 'utf8' });
    assert.ok(!plain.stderr.includes('engine-diagnose.mjs'), plain.stderr);
  } finally {
    rmSync(pack, { recursive: true, force: true });
  }
});

test('bench/gpu.sh rejects unknown options', () => {
  const r = spawnSync('bash', [script, '--bogus'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: bench\/gpu\.sh/);
});
