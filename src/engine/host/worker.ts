// The engine's worker thread: onnxruntime-node's run() is synchronous inside, so the networks run here and the
// HTTP event loop stays free. Jobs run one at a time; a cancel lands between denoising steps.
import { parentPort, workerData } from 'node:worker_threads';
import { EngineError } from '../errors.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import type { EngineConfig, FromWorker, ToWorker } from './protocol.ts';

const port = parentPort!;
const send = (m: FromWorker): void => port.postMessage(m);

const controllers = new Map<number, AbortController>();
let chain: Promise<void> = Promise.resolve();

async function main(): Promise<void> {
  const pipeline = await Pipeline.create(workerData as EngineConfig);
  port.on('message', (m: ToWorker) => {
    if (m.type === 'cancel') return controllers.get(m.id)?.abort();
    if (m.type === 'stats') return send({ type: 'stats', id: m.id, stats: pipeline.stats() });
    if (m.type === 'hint') {
      chain = chain.then(async () => {
        try {
          send({ type: 'hints', id: m.id, images: await pipeline.hint(m.req) });
        } catch (e) {
          send({ type: 'error', id: m.id, error: EngineError.from(e).toJSON() });
        }
      });
      return;
    }
    const ac = new AbortController();
    controllers.set(m.id, ac);
    chain = chain.then(async () => {
      try {
        if (ac.signal.aborted) throw new EngineError('cancelled', 'cancelled before start');
        const result = await pipeline.generate(m.opts, {
          signal: ac.signal,
          onProgress: (progress) => send({ type: 'progress', id: m.id, progress }),
          onPlan: (plan) => send({ type: 'plan', id: m.id, plan }),
          onPhase: (phase) => send({ type: 'phase', id: m.id, phase }),
        });
        // PNGs are small next to the run: a structured-clone copy is simpler than managing transfer lists.
        send({ type: 'result', id: m.id, result });
      } catch (e) {
        send({ type: 'error', id: m.id, error: EngineError.from(e).toJSON() });
      } finally {
        controllers.delete(m.id);
      }
    });
  });
  send({ type: 'ready' });
}

main().catch((e) => send({ type: 'fatal', message: e instanceof Error ? e.message : String(e) }));
