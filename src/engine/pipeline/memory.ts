// What the process really holds: resident memory (RSS) as the kernel counts it, the machine's memory (or the
// container's limit), the default budget for loaded networks derived from it, and a model folder's first estimate.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { totalmem } from 'node:os';

const MB = 2 ** 20;

/** The whole process's resident set size in MB (every thread: the engine worker's ONNX Runtime memory too). */
export function processRssMB(): number {
  return process.memoryUsage.rss() / MB;
}

/** The memory this process may use, in MB: the machine's, or a cgroup (container) limit when that is lower. */
export function machineMemoryMB(): number {
  let limit = totalmem() / MB;
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const v = readFileSync(file, 'utf8').trim();
      const n = Number(v);
      if (v !== 'max' && Number.isFinite(n) && n > 0) limit = Math.min(limit, n / MB);
    } catch {
      // not in a cgroup with that controller
    }
  }
  return limit;
}

/** Fraction of the machine's memory the engine's process may hold by default (the rest: OS, page cache, others). */
export const DEFAULT_BUDGET_FRACTION = 0.75;

/** The default process memory budget: 75% of machineMemoryMB(), in whole MB. */
export function defaultMemoryBudgetMB(): number {
  return Math.floor(machineMemoryMB() * DEFAULT_BUDGET_FRACTION);
}

/**
 * Whether glibc malloc returns freed large blocks to the OS at once: true when MALLOC_MMAP_THRESHOLD_ is set
 * (it turns off glibc's dynamic threshold, which otherwise keeps freed weight buffers in the heap, so RSS never
 * comes down after an eviction). It must be in the environment when the process starts; see README.
 */
export function mallocReturnsMemory(env: Record<string, string | undefined>): boolean {
  return process.platform !== 'linux' || (env.MALLOC_MMAP_THRESHOLD_ ?? '') !== '';
}

/** Size of a model folder's weight files (not its sub-folders) in MB: twice it is a model's first memory estimate. */
export function weightFilesMB(dir: string): number {
  let bytes = 0;
  for (const f of readdirSync(dir)) if (/\.(safetensors|bin|pth?|ckpt)$/.test(f)) bytes += statSync(join(dir, f)).size;
  return bytes / MB;
}
