// What `controlnet models list` shows: every installed model with its kind, id, size, and whether its weights are
// a demo's (the trained shapes demo of assets/demo-model, or the random test models: their DEMO.json says which) or real.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MODEL_KINDS } from '../engine/store.ts';
import type { ModelsFolder } from '../storage/models-folder.ts';

export interface ListedModel {
  kind: string; id: string; bytes: number; demo: boolean;
  /** What the demo's DEMO.json says of its weights (e.g. "random weights, noise-like images"); absent when real. */
  demoNote?: string;
}

/** The demo models carry a DEMO.json marker ({demo: true, note}); an unreadable marker still marks a demo. */
function demoNote(path: string): string | undefined {
  const f = join(path, 'DEMO.json');
  if (!existsSync(f)) return undefined;
  try {
    const note = (JSON.parse(readFileSync(f, 'utf8')) as { note?: unknown }).note;
    return typeof note === 'string' ? note : 'demo';
  } catch {
    return 'demo';
  }
}

/** Every model in the folder, kind by kind. */
export async function modelsReport(folder: ModelsFolder): Promise<ListedModel[]> {
  const models: ListedModel[] = [];
  for (const kind of MODEL_KINDS) {
    for (const m of await folder.list(kind)) {
      const note = demoNote(m.path);
      models.push({ kind, id: m.id, bytes: m.bytes, demo: note !== undefined, ...(note !== undefined ? { demoNote: note } : {}) });
    }
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
