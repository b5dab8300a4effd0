// `controlnet models pull annotators` (or `annotator:<type>,...`): fetches the annotator files auto_hint reads
// (models.ts annotatorDownloads) from the hub into <modelsDir>/annotator/<name>/, skipping files already there.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { annotatorDownloads, DEFAULT_PULL_TYPES, type AnnotatorDownload } from '../engine/annotators/models.ts';
import { CONTROLNET_TYPES, type ControlNetType } from '../engine/pipeline/types.ts';
import type { ModelDownloader } from './model-download.ts';

/**
 * The types a pull source names: "annotators" (the default set) or "annotator:<type>[,<type>...]"; null when the
 * source is not an annotator pull. Throws naming an unknown type.
 */
export function annotatorPullTypes(source: string): ControlNetType[] | null {
  if (source === 'annotators') return DEFAULT_PULL_TYPES;
  const m = /^annotators?:(.+)$/.exec(source);
  if (!m) return null;
  const types = m[1]!.split(',').map((t) => t.trim());
  const bad = types.find((t) => !(CONTROLNET_TYPES as readonly string[]).includes(t));
  if (bad) throw new Error(`unknown control type "${bad}" (one of ${CONTROLNET_TYPES.join(', ')})`);
  return types as ControlNetType[];
}

export interface PulledFile extends AnnotatorDownload {
  /** bytes downloaded; 0 when the file was already installed */
  bytes: number;
}

/** Downloads the files of these types that are not installed yet, one after another. */
export async function pullAnnotators(dl: ModelDownloader, modelsDir: string, types: ControlNetType[], onFile?: (f: AnnotatorDownload) => void): Promise<PulledFile[]> {
  const out: PulledFile[] = [];
  for (const f of annotatorDownloads(types)) {
    const dest = join(modelsDir, ...f.dest.split('/'));
    if (existsSync(dest)) {
      out.push({ ...f, bytes: 0 });
      continue;
    }
    onFile?.(f);
    out.push({ ...f, bytes: await dl.hubFile(f.repo, f.path, dest) });
  }
  return out;
}
