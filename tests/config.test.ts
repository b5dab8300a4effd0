import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../src/config.ts';
import { engineConfig } from '../src/worker/engine-factory.ts';

test('defaults, and every engine setting reaches the engine config', () => {
  const c = loadConfig({ DATA_DIR: '/d' });
  assert.equal(c.port, 8080); assert.equal(c.modelsDir, '/d/models'); assert.equal(c.engineAllowSpinning, false);
  assert.equal(c.vaeTileAbovePixels, 768 * 768); assert.equal(c.engineProvider, undefined);
  const e = engineConfig(loadConfig({ DATA_DIR: '/d', MODELS_DIR: '/m', ENGINE_PROVIDER: 'cpu', ENGINE_THREADS: '3', ENGINE_ALLOW_SPINNING: '1', VAE_TILE_ABOVE_PIXELS: '0', ENGINE_PRECISION: 'fp16', ENGINE_MEMORY_BUDGET_MB: '3000', ENGINE_CPU_MEM_ARENA: '1', ENGINE_TEST_DELAYS: '{"step":5}' }));
  assert.deepEqual(e, { dataDir: '/d', modelsDir: '/m', provider: 'cpu', threads: 3, allowSpinning: true, vaeTileAbovePixels: 0, precision: 'fp16',
    memoryBudgetMB: 3000, cpuMemArena: true, testDelays: { step: 5 } });
  assert.equal(loadConfig({}).engineCpuMemArena, false, 'the CPU arena is off by default (README: Memory budget)');
  assert.throws(() => loadConfig({ ENGINE_MEMORY_BUDGET_MB: 'lots' }), (x: unknown) => x instanceof ConfigError && /ENGINE_MEMORY_BUDGET_MB/.test(x.message));
  assert.throws(() => loadConfig({ REDIS_URL: 'http://x' }), (x: unknown) => x instanceof ConfigError && /REDIS_URL/.test(x.message));
  assert.throws(() => loadConfig({ ENGINE_PRECISION: 'fp8' }), (x: unknown) => x instanceof ConfigError && /ENGINE_PRECISION/.test(x.message));
});

test('a bad setting is refused at start, naming the variable and the rule', () => {
  assert.throws(() => loadConfig({ ENGINE_PROVIDER: 'cudda' }), (e: unknown) => e instanceof ConfigError && /^ENGINE_PROVIDER /.test(e.message) && /cpu/.test(e.message));
  assert.throws(() => loadConfig({ PORT: 'eighty' }), (e: unknown) => e instanceof ConfigError && /PORT must be a number, got "eighty"/.test(e.message));
  assert.throws(() => loadConfig({ PORT: '70000' }), (e: unknown) => e instanceof ConfigError && /PORT/.test(e.message));
  assert.throws(() => loadConfig({ ENGINE_ALLOW_SPINNING: 'maybe' }), (e: unknown) => e instanceof ConfigError && /ENGINE_ALLOW_SPINNING/.test(e.message));
});

test('only config.ts and cli/ read process.env (the engine gets its settings passed down)', () => {
  const offenders: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(ts|mts|mjs|js)$/.test(name) && readFileSync(p, 'utf8').includes('process.env')) offenders.push(p);
    }
  };
  walk('src');
  assert.deepEqual(offenders.filter((p) => p !== join('src', 'config.ts') && !p.startsWith(join('src', 'cli'))), []);
});
