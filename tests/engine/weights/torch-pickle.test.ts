import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, loadFixture } from '../../support/fixtures.ts';
import { openTorchCheckpoint, loadTorchArchive, TORCH_GLOBALS } from '../../../src/engine/weights/torch-pickle.ts';
import { unpickle, UnpicklingRefused } from '../../../src/engine/weights/pickle.ts';

const W = join(FIXTURES, 'weights');

async function expectSame(file: string, fixture: string) {
  const ckpt = await openTorchCheckpoint(join(W, file));
  const fx = loadFixture(fixture);
  assert.deepEqual(ckpt.keys().sort(), Object.keys(fx.tensors).sort());
  for (const key of ckpt.keys()) {
    const want = fx.f32(key);
    const got = await ckpt.readF32(key);
    assert.deepEqual(Array.from(got), Array.from(want), key);
    // the fixture format stores a 0-d tensor as [1]
    assert.deepEqual(ckpt.info(key)!.shape.length ? ckpt.info(key)!.shape : [1], fx.get(key).shape, key);
  }
  return ckpt;
}

test('reads a torch.save state dict: fp32, fp16, bf16, int64, parameters, transposed and shared-storage views', async () => {
  const ckpt = await expectSame('plain.pth', 'weights/plain');
  assert.equal(ckpt.info('half')!.dtype, 'float16');
  assert.equal(ckpt.info('bf16')!.dtype, 'bfloat16');
  assert.equal(ckpt.info('steps')!.dtype, 'int64');
  assert.match(ckpt.fingerprint(), /^pt:[0-9a-f]{32}$/);
});

test('a lightning .ckpt exposes the tensors under state_dict (nested names, fp16)', async () => {
  const ckpt = await expectSame('lightning.ckpt', 'weights/lightning');
  assert.ok(ckpt.keys().every((k) => k.startsWith('model.')));
  assert.equal(ckpt.info('model.layer.weight')!.dtype, 'float16');
  const { root } = await loadTorchArchive(join(W, 'lightning.ckpt'));
  const hp = (root as Map<string, any>).get('hparams') as Map<string, any>;
  assert.equal(hp.get('lr'), 1e-4);
  assert.deepEqual(hp.get('betas'), [0.9, 0.999]);
  assert.deepEqual(hp.get('flags'), [true, false, null]);
  assert.equal(hp.get('big'), 2n ** 70n);
  assert.equal((root as Map<string, any>).get('global_step'), 1200);
});

for (const [file, global] of [['evil-system.pth', 'posix.system'], ['evil-eval.pth', '__builtin__.eval']] as const) {
  test(`refuses ${file} naming ${global}, and its command does not run`, async () => {
    const { marker } = JSON.parse(readFileSync(join(W, 'evil.json'), 'utf8'));
    rmSync(marker, { force: true });
    await assert.rejects(openTorchCheckpoint(join(W, file)), (e: Error) => {
      assert.ok(e instanceof UnpicklingRefused);
      assert.match(e.message, new RegExp(`refusing to unpickle global "${global.replace('.', '\\.')}"`));
      return true;
    });
    assert.equal(existsSync(marker), false, 'the payload must not have run');
  });
}

test('unpickler: protocol-2 containers and refusal of unknown opcodes and globals', () => {
  // pickle.dumps({'a': [1, -2, 3.5, 'x', None, True], (1, 2): b'hi'}, protocol=2)
  // (protocol 2 pickles bytes through _codecs.encode)
  const p2 = Buffer.from('80027d71002858010000006171015d7102284b014afeffffff47400c00000000000058010000007871034e88654b014b028671'
    + '04635f636f646563730a656e636f64650a710558020000006869710658060000006c6174696e317107867108527109752e', 'hex');
  const v = unpickle(p2, { globals: TORCH_GLOBALS }) as Map<unknown, unknown>;
  assert.throws(() => unpickle(p2, { globals: {} }), /refusing to unpickle global "_codecs\.encode"/);
  assert.deepEqual(v.get('a'), [1, -2, 3.5, 'x', null, true]);
  assert.deepEqual([...v.values()][1], Buffer.from('hi'));
  // pickle.dumps(subprocess.Popen, protocol=4)-style STACK_GLOBAL
  const sg = Buffer.from('80049518000000000000008c0a73756270726f63657373948c05506f70656e9493942e', 'hex');
  assert.throws(() => unpickle(sg, { globals: {} }), /refusing to unpickle global "subprocess\.Popen"/);
  assert.throws(() => unpickle(Buffer.from('8002692e', 'hex'), { globals: {} }), /unsupported pickle opcode 0x69/);
  assert.throws(() => unpickle(Buffer.from('80024a0100', 'hex'), { globals: {} }), /truncated/);
});

test('a file that is not a torch zip gets a clear error', async () => {
  await assert.rejects(openTorchCheckpoint(join(W, 'dtypes.safetensors')), /not a PyTorch zip checkpoint/);
});
