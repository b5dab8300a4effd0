// The eta of a running job: its work plan (the engine announces it before it starts: networks to build and
// load, prompt encoding, each denoising step, the decode) times the throughput measured on this server per
// phase (seconds per unit, phases.ts units), minus what is done. A phase never measured here uses a prior
// measured on a 2-core CPU machine at SD 1.5 size; each finished phase replaces it (and later ones refine it).
import type { Phase, PhaseEvent, PlannedWork, WorkPlan } from '../engine/pipeline/types.ts';

/**
 * Seconds per unit before a phase was measured on this server (onnxruntime-node 1.30, 2 cores, fp32, SD 1.5 +
 * one ControlNet): build 18 s and load 17 s for the 3.3 GB UNet; a 512² CFG step ≈ 15 s (0.52 "megapixel-steps");
 * decode 14 s at 512²; a prompt encoding ≈ 0.5 s.
 */
export const PRIOR_SECONDS_PER_UNIT: Record<Phase, number> = {
  hash: 0.0025, build: 0.0055, load: 0.0052, encode: 0.5, step: 29, decode: 53, safety_check: 10, upscale: 60,
};

/** A job's id in whatever form its queue uses. */
export type JobKey = string | number;

/** Weight of the newest measurement in the running mean of a rate. */
const SMOOTHING = 0.5;

interface Running {
  remaining: PlannedWork[];
  /** When the last phase of this job ended (ms, performance.now()). */
  since: number;
}

export class EtaModel {
  private readonly rates = new Map<string, number>();
  private readonly jobs = new Map<JobKey, Running>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  private rateKey(phase: Phase, key?: string): string {
    return key ? `${phase}:${key}` : phase;
  }

  /** Learns from one finished phase (seconds per unit, smoothed per phase and key). */
  observe(e: PhaseEvent): void {
    if (!(e.units > 0) || !(e.seconds >= 0)) return;
    const rate = e.seconds / e.units;
    for (const k of new Set([this.rateKey(e.phase, e.key), this.rateKey(e.phase)])) {
      const old = this.rates.get(k);
      this.rates.set(k, old === undefined ? rate : SMOOTHING * rate + (1 - SMOOTHING) * old);
    }
  }

  /** Seconds per unit of a phase: measured with this key, else measured for the phase, else the prior. */
  rate(phase: Phase, key?: string): number {
    return this.rates.get(this.rateKey(phase, key)) ?? this.rates.get(phase) ?? PRIOR_SECONDS_PER_UNIT[phase];
  }

  /** Predicted seconds for a whole plan. */
  predict(plan: WorkPlan): number {
    return plan.work.reduce((a, w) => a + this.rate(w.phase, w.key) * w.units, 0);
  }

  /** A job announced its plan: it is running from now. */
  start(jobId: JobKey, plan: WorkPlan): void {
    this.jobs.set(jobId, { remaining: [...plan.work], since: this.now() });
  }

  /** A phase of a job ended: learn from it and strike it from the job's plan. */
  phase(jobId: JobKey, e: PhaseEvent): void {
    this.observe(e);
    const j = this.jobs.get(jobId);
    if (!j) return;
    const i = j.remaining.findIndex((w) => w.phase === e.phase && (w.network === undefined || w.network === e.network));
    if (i >= 0) j.remaining.splice(i, 1);
    j.since = this.now();
  }

  finish(jobId: JobKey): void {
    this.jobs.delete(jobId);
  }

  /** Seconds until the job is done, or undefined when it announced no plan (not started here). */
  remaining(jobId: JobKey): number | undefined {
    const j = this.jobs.get(jobId);
    if (!j) return undefined;
    const [current, ...rest] = j.remaining;
    if (!current) return 0;
    const elapsed = (this.now() - j.since) / 1000;
    const currentLeft = Math.max(0, this.rate(current.phase, current.key) * current.units - elapsed);
    return currentLeft + rest.reduce((a, w) => a + this.rate(w.phase, w.key) * w.units, 0);
  }
}
