/**
 * Choosing the next token from one row of logits, in the order of Hugging Face's logits processors: repetition
 * penalty, then temperature, top-k and top-p, then a draw (or argmax when greedy). Runs on a Float32Array of V
 * values in JavaScript: one row per step is cheap next to the forward pass, and the draw must come from the
 * seeded {@link Rng} to be reproducible.
 */
import type { Rng } from '@bvllm/core';
import { z } from 'zod';

export const samplingConfig = z
  .object({
    /** Sample instead of taking the argmax. The reference decodes greedily (`do_sample=False`, spec §3). */
    doSample: z.boolean().default(false),
    /** Softmax temperature when sampling; the reference uses 0.2 when it samples (spec §3). */
    temperature: z.number().positive().default(0.2),
    /** Nucleus mass: keep the most likely tokens until their probability reaches topP (reference 0.9, spec §3). */
    topP: z.number().gt(0).max(1).default(0.9),
    /** Keep only the k most likely tokens; 0 turns it off (HF's default 50 is not used by the reference). */
    topK: z.number().int().nonnegative().default(0),
    /** HF `repetition_penalty` over prompt and generated ids; 1 turns it off (reference default). */
    repetitionPenalty: z.number().positive().default(1),
  })
  .strict();
export type SamplingConfig = z.output<typeof samplingConfig>;

/** Index of the largest value; the first one on ties, as torch.argmax. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/**
 * HF `RepetitionPenaltyLogitsProcessor`: each id seen so far has its logit divided by the penalty when positive
 * and multiplied when negative, once however often it occurred. Modifies `logits` in place.
 */
export function applyRepetitionPenalty(logits: Float32Array, seen: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  for (const id of new Set(seen)) {
    if (id < 0 || id >= logits.length) continue;
    logits[id] = logits[id] < 0 ? logits[id] * penalty : logits[id] / penalty;
  }
}

/** Tokens this many nats below the best have probability under e^-40 of it and cannot change a draw. */
const NEGLIGIBLE_NATS = 40;

/**
 * The kept candidates after temperature, top-k and top-p, most likely first, with their renormalised
 * probabilities. Always keeps at least one token. Only tokens within {@link NEGLIGIBLE_NATS} of the best are
 * sorted (a full sort of a 152k vocabulary costs more than a small model's decode step); when they cannot fill
 * top-k or top-p, all tokens are.
 */
export function candidateDistribution(logits: Float32Array, config: Pick<SamplingConfig, 'temperature' | 'topK' | 'topP'>): { ids: number[]; probs: number[] } {
  const scaled = (id: number) => logits[id] / config.temperature;
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  const top = scaled(best);
  const near: number[] = [];
  for (let i = 0; i < logits.length; i++) if (top - scaled(i) < NEGLIGIBLE_NATS) near.push(i);
  const select = (pool: number[]) => {
    const order = pool.sort((a, b) => logits[b] - logits[a] || a - b);
    const kept = config.topK > 0 ? order.slice(0, config.topK) : order;
    const weights = kept.map((id) => Math.exp(scaled(id) - top));
    const total = weights.reduce((a, b) => a + b, 0);
    const ids: number[] = [];
    const probs: number[] = [];
    let mass = 0;
    for (let i = 0; i < kept.length && (i === 0 || mass < config.topP); i++) {
      ids.push(kept[i]);
      probs.push(weights[i] / total);
      mass += weights[i] / total;
    }
    return { ids, probs: probs.map((p) => p / mass), complete: kept.length === config.topK || mass >= config.topP };
  };
  const fast = select(near);
  if (fast.complete || near.length === logits.length) return { ids: fast.ids, probs: fast.probs };
  const full = select(Array.from(logits.keys()));
  return { ids: full.ids, probs: full.probs };
}

/** The next token: argmax when greedy, else one draw from {@link candidateDistribution}. `logits` is consumed. */
export function sampleNextToken(logits: Float32Array, seen: readonly number[], config: SamplingConfig, rng: Rng): number {
  applyRepetitionPenalty(logits, seen, config.repetitionPenalty);
  if (!config.doSample) return argmax(logits);
  const { ids, probs } = candidateDistribution(logits, config);
  const u = rng.uniformArray(1)[0];
  let cumulative = 0;
  for (let i = 0; i < ids.length; i++) {
    cumulative += probs[i];
    if (u < cumulative) return ids[i];
  }
  return ids[ids.length - 1];
}
