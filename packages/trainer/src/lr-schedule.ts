/**
 * Learning-rate schedules with linear warm-up, written to give the same multiplier as Hugging Face's
 * `get_linear_schedule_with_warmup` and `get_cosine_schedule_with_warmup` (one cosine half-cycle), which the official
 * scripts use through `--lr_scheduler_type` and `--warmup_ratio` (spec §2). HF's `LambdaLR` applies the multiplier of
 * step `s` to the optimizer update numbered `s` (from 0), so the very first update of a warm-up runs with lr 0.
 */
import { InvalidArgumentError } from '@bvllm/core';

/** `linear` is the supplementary material's stage-1 schedule (spec §10 D7); `cosine` is the scripts' (spec §2). */
export type ScheduleKind = 'linear' | 'cosine' | 'constant';

/** HF `TrainingArguments.get_warmup_steps`: `ceil(totalSteps · warmupRatio)`. */
export function warmupStepsFor(totalSteps: number, warmupRatio: number): number {
  return Math.ceil(totalSteps * warmupRatio);
}

/** The multiplier on the base lr for optimizer update `step` (0-based), exactly as HF's `lr_lambda`. */
export function lrMultiplier(kind: ScheduleKind, step: number, warmupSteps: number, totalSteps: number): number {
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  if (kind === 'constant') return 1;
  if (kind === 'linear') return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
  const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  // HF's num_cycles = 0.5: cos(π · 2 · 0.5 · progress).
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** A base lr, a schedule kind and the run length; `lrAt(step)` is the lr of optimizer update `step`. */
export class LrSchedule {
  readonly warmupSteps: number;

  constructor(
    readonly kind: ScheduleKind,
    readonly baseLr: number,
    readonly totalSteps: number,
    warmupRatio: number,
  ) {
    if (!(totalSteps > 0) || !Number.isInteger(totalSteps))
      throw new InvalidArgumentError('totalSteps', `expected a positive integer, got ${totalSteps}`);
    if (!(warmupRatio >= 0 && warmupRatio <= 1)) throw new InvalidArgumentError('warmupRatio', `expected a value in [0, 1], got ${warmupRatio}`);
    this.warmupSteps = warmupStepsFor(totalSteps, warmupRatio);
  }

  lrAt(step: number): number {
    return this.baseLr * lrMultiplier(this.kind, step, this.warmupSteps, this.totalSteps);
  }
}
