/** Config schemas of the spatial-sampling kinds, discriminated on `kind` (spec §1.1 (c), (d), §5, §10). */
import { qformerConfigSchema } from '@bvllm/core';
import { z } from 'zod';

/** The official text-conditioned sampler: a spatial Q-Former with R queries per kept frame (spec §1.1 (c)). */
export const qformerSampleConfig = z
  .object({
    kind: z.literal('qformer'),
    /** R, spatial queries (and so tokens) per frame; `vlm_att_query_spatial` holds R rows. Code: 32 (spec §1.1). */
    numQueries: z.number().int().positive().default(32),
    /**
     * θ, the total visual-token budget of the optional ToMe merge (spec §1.1 (d), D12). Each frame keeps
     * N' = trunc(max(1, ⌊θ / R⌋ / K' · R)) tokens when that is below R. Code: 576; `null` turns the merge off.
     */
    tokenBudget: z.number().int().positive().nullable().default(576),
    /** The spatial Q-Former's shape; InstructBLIP's bert-base by default. */
    qformer: qformerConfigSchema.default({}),
  })
  .strict();
export type QFormerSampleConfig = z.infer<typeof qformerSampleConfig>;

/**
 * Baseline: adaptive average pooling of each frame's patch grid to `outputGrid` cells (PyTorch
 * `adaptive_avg_pool2d` bins), R = rows · cols tokens of width Cv, without the question (spec §5 row 3 ablation).
 */
export const poolSampleConfig = z
  .object({
    kind: z.literal('pool'),
    /** [rows, cols] of pooled cells; 4 × 8 = 32 matches the Q-Former's R (spec §1.1). */
    outputGrid: z.tuple([z.number().int().positive(), z.number().int().positive()]).default([4, 8]),
    /** [height, width] of the patch grid; omitted: square, √N (24 × 24 for EVA-ViT-g at 336 px). */
    patchGrid: z.tuple([z.number().int().positive(), z.number().int().positive()]).optional(),
  })
  .strict();
export type PoolSampleConfig = z.infer<typeof poolSampleConfig>;

/** Baseline: every patch of every kept frame (R = N, width Cv), the no-sampling ablation (spec §5). */
export const noneSampleConfig = z.object({ kind: z.literal('none') }).strict();
export type NoneSampleConfig = z.infer<typeof noneSampleConfig>;

export type SpatialSampleConfig = QFormerSampleConfig | PoolSampleConfig | NoneSampleConfig;
