// What `controlnet models list` shows: every installed model with its kind, id, size, and whether its weights are
// the demo's (random, noise-like images) or real.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MODEL_KINDS } from '../engine/store.ts';
import type { ModelsFolder } from '../storage/models-folder.ts';

export interface ListedModel { kind: string; id: string; bytes: number; demo: boolean }

/** The demo models carry a DEMO.json marker (engine/models/demo.ts). */
const isDemo = (path: string) => existsSync(join(path, 'DEMO.json'));

/** Every model in the folder, kind by kind. */
export async function modelsReport(folder: ModelsFolder): Promise<ListedModel[]> {
  const models: ListedModel[] = [];
  for (const kind of MODEL_KINDS) {
    for (const m of await folder.list(kind)) models.push({ kind, id: m.id, bytes: m.bytes, demo: isDemo(m.path) });
  }
  return models;
}

/** 1536 → "1.5 KB" (powers of 1024). */
export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}
