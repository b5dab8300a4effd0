// The real engine for this process (a worker thread running the ONNX pipeline), configured from the settings.
import type { Config } from '../config.ts';
import { createEngine, type WorkerEngine } from '../engine/host/index.ts';
import type { EngineConfig } from '../engine/host/protocol.ts';
import type { TestDelays } from '../engine/pipeline/phases.ts';

/** The engine's part of the settings: everything it needs, so that it reads no environment itself. */
export function engineConfig(config: Config): EngineConfig {
  return {
    dataDir: config.dataDir, modelsDir: config.modelsDir, provider: config.engineProvider, threads: config.engineThreads,
    allowSpinning: config.engineAllowSpinning, vaeTileAbovePixels: config.vaeTileAbovePixels, precision: config.enginePrecision,
    memoryBudgetMB: config.engineMemoryBudgetMB, cpuMemArena: config.engineCpuMemArena, testDelays: config.engineTestDelays as TestDelays | undefined,
  };
}

export function engineFactory(config: Config): () => Promise<WorkerEngine> {
  return () => createEngine(engineConfig(config));
}
