// Turns a checkpoint in another key layout into a diffusers-named WeightSource from an explicit list of
// (diffusers name ← original name) pairs built from the model config, reporting missing and unknown keys.
import { MappedSource, type MappedTensor } from './views.ts';
import type { WeightSource } from './types.ts';

export interface KeyPair {
  diffusers: string;
  original: string;
  /** A 1x1 conv kernel [O, I, 1, 1] (or conv1d [O, I, 1]) read as a linear weight [O, I]. */
  squeeze?: boolean;
  /** Only rows [start, end) of the original's first axis (a q/k/v third of a fused attention projection). */
  rows?: [number, number];
}

/** Collects pairs; module-level helpers add ".weight"/".bias" together. */
export class KeyPairs {
  readonly pairs: KeyPair[] = [];

  param(diffusers: string, original: string, squeeze = false): void {
    this.pairs.push({ diffusers, original, squeeze });
  }

  /** Rows [start, end) of the original tensor's first axis under the diffusers name. */
  rows(diffusers: string, original: string, rows: [number, number]): void {
    this.pairs.push({ diffusers, original, rows });
  }

  /** A module with weight and bias. */
  module(diffusers: string, original: string, squeeze = false): void {
    this.param(`${diffusers}.weight`, `${original}.weight`, squeeze);
    this.param(`${diffusers}.bias`, `${original}.bias`, squeeze);
  }
}

export interface ConvertOptions {
  /** What is being converted, for error messages (e.g. "UNet"). */
  component: string;
  /** Where the weights come from, for error messages. */
  file: string;
  /** Prefix of this component's keys in the source (e.g. "model.diffusion_model."). */
  prefix: string;
  /** Keys under the prefix (prefix removed) that are not weights and may be left unused. */
  ignore?: (key: string) => boolean;
}

const list = (names: string[]) => names.slice(0, 12).join(', ') + (names.length > 12 ? ` … (${names.length} in all)` : '');

export function convertKeys(source: WeightSource, pairs: KeyPair[], opts: ConvertOptions): MappedSource {
  const entries = new Map<string, MappedTensor>();
  const used = new Set<string>();
  const missing: string[] = [];
  for (const p of pairs) {
    const name = opts.prefix + p.original;
    const info = source.info(name);
    if (!info) {
      missing.push(name);
      continue;
    }
    used.add(name);
    let shape: number[] | undefined;
    if (p.squeeze && info.shape.length > 2) {
      if (info.shape.slice(2).some((d) => d !== 1)) throw new Error(`${opts.file}: ${name} ${JSON.stringify(info.shape)} is not a 1x1 kernel`);
      shape = info.shape.slice(0, 2);
    }
    entries.set(p.diffusers, { source, name, shape, rows: p.rows });
  }
  const unknown = source.keys().filter((k) => k.startsWith(opts.prefix) && !used.has(k) && !opts.ignore?.(k.slice(opts.prefix.length)));
  const problems: string[] = [];
  if (missing.length) problems.push(`missing ${missing.length} key(s): ${list(missing)}`);
  if (unknown.length) problems.push(`unknown ${unknown.length} key(s): ${list(unknown)}`);
  if (problems.length) throw new Error(`${opts.file}: the ${opts.component} weights do not match its config: ${problems.join('; ')}`);
  return new MappedSource(entries, `${opts.component}:${opts.prefix}`);
}
