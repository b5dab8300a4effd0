// The models a job needs beyond its base model (its ControlNets, LoRAs and VAE, as the request names them), and
// whether a server holds all of them. The pool routes on the whole set: a server takes a job only when it has the
// base model and every one of these installed (cluster routing, RedisQueue's queue per model set).
import { createHash } from 'node:crypto';
import type { GenerateRequest } from '../request/schema.ts';

export type NeedKind = 'vae' | 'lora' | 'controlnet';

/** The request's models beyond the base, per kind, sorted. */
export type ModelNeeds = Record<NeedKind, string[]>;

/** The kinds in the order a missing one is reported (the order the one-machine check has always used). */
export const NEED_KINDS: NeedKind[] = ['vae', 'lora', 'controlnet'];

export function needsOf(r: Pick<GenerateRequest, 'vae' | 'lora_model' | 'controlnet_model'>): ModelNeeds {
  const sorted = (xs: string[]) => [...new Set(xs)].sort();
  return { vae: r.vae ? [r.vae] : [], lora: sorted(r.lora_model ?? []), controlnet: sorted(r.controlnet_model ?? []) };
}

/** A short stable name of a non-empty set ('' when the job needs nothing beyond its base): 12 hex digits of SHA-1. */
export function needsKey(n: ModelNeeds): string {
  if (NEED_KINDS.every((k) => n[k].length === 0)) return '';
  return createHash('sha1').update(JSON.stringify(NEED_KINDS.map((k) => n[k]))).digest('hex').slice(0, 12);
}

/** The first model of `n` not in `installed` (kind → installed ids), in NEED_KINDS order, or undefined. */
export function firstMissing(installed: Partial<Record<string, string[]>>, n: ModelNeeds): { kind: NeedKind; id: string } | undefined {
  for (const kind of NEED_KINDS) {
    const have = installed[kind] ?? [];
    const id = n[kind].find((x) => !have.includes(x));
    if (id !== undefined) return { kind, id };
  }
  return undefined;
}
