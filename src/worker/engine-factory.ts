// The real engine for this process (a worker thread running the ONNX pipeline), configured from the settings.
import type { Config } from '../config.ts';
import { createEngine, type WorkerEngine } from '../engine/host/index.ts';

export function engineFactory(config: Config): () => Promise<WorkerEngine> {
  return () => createEngine({ dataDir: config.dataDir, provider: config.engineProvider, threads: config.engineThreads, memoryBudgetMB: config.engineMemoryBudgetMB });
}
