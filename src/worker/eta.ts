// The eta: a model of the seconds each unit of work costs, per phase, learned on this server from the engine's
// phase reports (engine/pipeline/phases.ts; units there: MB of weights for hash, build and load, megapixel-
// passes for a denoising step, megapixels for decode, …). A job's plan (engine/pipeline/plan.ts) lists its work
// in those units; its remaining time is the rest of its current piece of work plus all later ones, at the
// learned rates. A queued job waits for the jobs ahead of it (their remaining time, dealt to this server's
// workers) and then runs its own work. A phase never measured here uses PRIOR_SECONDS_PER_UNIT.
import type { Phase, PhaseEvent, PlannedWork, WorkPlan } from '../engine/pipeline/types.ts';

/**
 * Seconds per unit before a phase was measured on this server: SD 1.5 + one ControlNet at 512², fp32 on a
 * 2-core CPU (onnxruntime-node 1.30), as measured in issue 16 and bench/: hash 8 s for ~4 GB of weight files;
 * UNet build 18 s and load 17 s for its 3.3 GB; one prompt encoding ≈ 0.5 s; a CFG step with one ControlNet
 * ≈ 15 s for 1.05 megapixel-passes (0.26 MP × (2 UNet rows + 2 ControlNet rows)); decode 14 s for 0.26 MP.
 * Not measured, estimated: VAE encoding at half the decoder's cost, annotators 2 s/MP, the safety check 10 s/MP
 * (CLIP ViT-L once per image), upscale 60 s/MP (Real-ESRGAN x4plus on CPU); measured on one thread with random weights
 * of the real shapes (bench/translate.ts, bench/prompt-enhancer.ts): a translation ≈ 3 s (opus-mt, 4 beams, ~20
 * tokens), an enhancement ≈ 6 s (GPT-2 small, 64 new tokens at ~93 ms).
 */
export const PRIOR_SECONDS_PER_UNIT: Record<Phase, number> = {
  hash: 0.002, translate: 3, enhance: 6, build: 0.0055, load: 0.0052, encode: 0.5, vae_encode: 27, annotate: 2, step: 14.5, decode: 53, safety_check: 10, upscale: 60,
};

/**
 * Weight of what was measured before each new measurement of the same rate: a rate is the ratio of
 * exponentially decayed sums (Σ seconds / Σ units), so the last few measurements decide it (a change of load on
 * the machine shows within a few steps) and larger pieces of work count for more than small ones.
 */
export const DECAY = 0.7;

/** The decayed sums behind one rate. */
export interface RateSums {
  seconds: number;
  units: number;
}

/** Where the learned rates are kept across restarts (jobs/phase-rates.ts: the DATA_DIR database). */
export interface RateStore {
  /** Every rate kept, by its key ("phase" or "phase:key"). */
  load(): Map<string, RateSums>;
  save(key: string, sums: RateSums): void;
}

/** A job's id in whatever form its queue uses. */
export type JobKey = string | number;

interface Running {
  remaining: PlannedWork[];
  /** When the last phase of this job ended (ms, `now`). */
  since: number;
}

export class EtaModel {
  private sums: Map<string, RateSums>;
  private readonly jobs = new Map<JobKey, Running>();
  /** Each job's work by its request alone (a request never changes; working it out takes ~1 ms: scheduler set-up). */
  private readonly requestWork = new Map<JobKey, PlannedWork[]>();
  private readonly now: () => number;

  constructor(private readonly o: { store?: RateStore; now?: () => number } = {}) {
    this.now = o.now ?? (() => performance.now());
    this.sums = o.store?.load() ?? new Map();
  }

  /**
   * Reads the rates again from the store (a `serve --no-worker` process: a `worker` process on the same DATA_DIR
   * learns them).
   */
  reload(): void {
    if (this.o.store) this.sums = this.o.store.load();
  }

  private static rateKey(phase: Phase, key?: string): string {
    return key ? `${phase}:${key}` : phase;
  }

  /** Learns from one finished phase: its rate with its key (a network kind, an upscale factor) and the phase's overall rate. */
  observe(e: PhaseEvent): void {
    if (!(e.units > 0) || !(e.seconds >= 0)) return;
    for (const k of new Set([EtaModel.rateKey(e.phase, e.key), EtaModel.rateKey(e.phase)])) {
      const old = this.sums.get(k);
      const next = { seconds: e.seconds + DECAY * (old?.seconds ?? 0), units: e.units + DECAY * (old?.units ?? 0) };
      this.sums.set(k, next);
      this.o.store?.save(k, next);
    }
  }

  /** Seconds per unit of a phase: measured with this key, else measured for the phase, else the prior. */
  rate(phase: Phase, key?: string): number {
    const s = this.sums.get(EtaModel.rateKey(phase, key)) ?? this.sums.get(phase);
    return s && s.units > 0 ? s.seconds / s.units : PRIOR_SECONDS_PER_UNIT[phase];
  }

  /** Whether this phase (with this key, or at all) was measured here, rather than answered by the prior. */
  measured(phase: Phase, key?: string): boolean {
    return this.sums.has(EtaModel.rateKey(phase, key)) || this.sums.has(phase);
  }

  /** Predicted seconds for a list of work (a whole plan, or a queued request's work). */
  predict(work: PlannedWork[]): number {
    return work.reduce((a, w) => a + this.rate(w.phase, w.key) * w.units, 0);
  }

  /** The work of job `jobId` by its request alone, worked out by `work` once (the most recent 4096 jobs are kept). */
  workOf(jobId: JobKey, work: () => PlannedWork[]): PlannedWork[] {
    let w = this.requestWork.get(jobId);
    if (!w) {
      w = work();
      this.requestWork.set(jobId, w);
      if (this.requestWork.size > 4096) this.requestWork.delete(this.requestWork.keys().next().value!);
    }
    return w;
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

  /**
   * Seconds until a running job is done: what its current piece of work has left (its predicted time less the
   * time since the previous phase ended, at least 0) plus every later piece; undefined when the job announced
   * no plan here (it runs in another process, or has not planned yet).
   */
  remaining(jobId: JobKey): number | undefined {
    const j = this.jobs.get(jobId);
    if (!j) return undefined;
    const [current, ...rest] = j.remaining;
    if (!current) return 0;
    const elapsed = (this.now() - j.since) / 1000;
    return Math.max(0, this.rate(current.phase, current.key) * current.units - elapsed) + this.predict(rest);
  }

  /**
   * Seconds until a queued job is done. `running`: the remaining seconds of the jobs running now; `queued`: the
   * predicted seconds of each job queued ahead of it, in queue order; `own`: its own predicted seconds. The jobs
   * are dealt to `workers` workers as they free up (each next job goes to the worker that is free first), so
   * with one worker this is the plain sum.
   */
  static queued(running: number[], queued: number[], own: number, workers = 1): number {
    const free = new Array<number>(Math.max(1, workers)).fill(0);
    const next = () => free.indexOf(Math.min(...free));
    for (const s of [...running, ...queued]) free[next()]! += s;
    return free[next()]! + own;
  }
}
