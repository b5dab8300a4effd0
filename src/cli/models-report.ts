// What `controlnet models list` shows: every installed model (kind, id, size, demo or real weights) and, for each
// control type, whether its auto_hint annotator is built in, installed, or missing (and where to get it).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MODEL_KINDS } from '../engine/store.ts';
import { CONTROLNET_TYPES, type ControlNetType } from '../engine/pipeline/types.ts';
import { annotatorModel } from '../engine/annotators/models.ts';
import type { ModelsFolder } from '../storage/models-folder.ts';

export interface ModelsReport {
  models: { kind: string; id: string; bytes: number; demo: boolean }[];
  annotators: { type: ControlNetType; status: 'built-in' | 'installed' | 'missing'; name?: string; missing: string[]; source?: string }[];
}

/** The demo models carry a DEMO.json marker (engine/models/demo.ts). */
const isDemo = (path: string) => existsSync(join(path, 'DEMO.json'));

/** Reads the models folder; annotator files are looked up under <modelsDir>/annotator/. */
export async function modelsReport(folder: ModelsFolder, modelsDir: string): Promise<ModelsReport> {
  const models: ModelsReport['models'] = [];
  for (const kind of MODEL_KINDS) {
    for (const m of await folder.list(kind)) models.push({ kind, id: m.id, bytes: m.bytes, demo: isDemo(m.path) });
  }
  const annotators = CONTROLNET_TYPES.map((type): ModelsReport['annotators'][number] => {
    const a = annotatorModel(type);
    if (!a) return { type, status: 'built-in', missing: [] };
    const missing = a.files.filter((f) => !existsSync(join(modelsDir, 'annotator', f)));
    return { type, status: missing.length ? 'missing' : 'installed', name: a.name, missing, source: a.source };
  });
  return { models, annotators };
}

/** 1536 → "1.5 KB" (powers of 1024). */
export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}
