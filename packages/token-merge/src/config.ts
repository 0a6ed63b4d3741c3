/**
 * Configs of the temporal-merge stage kinds (spec §1.1 (b), decisions D3 in §10). One strict zod schema per kind,
 * discriminated on `kind`; each is the single source of its type.
 */
import { z } from 'zod';

/**
 * Order of the kept frames after merging (spec §10 D3). `time`: ascending by each kept query's own argmax frame
 * (stable), the project default, because the paper names lost temporal order as a limitation (spec §6) and the fix is
 * free. `query`: ascending query index, what the official code runs (`merge(..., sort=False)`, spec §1.1 (b)).
 */
export const frameOrder = z.enum(['time', 'query']);
export type FrameOrder = z.infer<typeof frameOrder>;

/** The official de-duplication: queries whose frameWeights rows are near-parallel are mean-merged (spec §1.1 (b)). */
export const rowCosineMergeConfig = z
  .object({
    kind: z.literal('row-cosine'),
    /**
     * γ, the merge threshold on the similarity (cos + 1) / 2 of two rows of frameWeights; a query merges when its
     * best earlier match is strictly above γ (raw cosine > 2γ − 1). Default 0.75 from the code
     * (`threshold_soft_matching(metric, threshold=0.75)`, spec §1.1 (b)); the paper note reports γ in 0.75–1.0 works best.
     */
    mergeThreshold: z.number().min(0).max(1).default(0.75),
    /** Order of the kept frames (spec §10 D3). Default `time` (project decision D3); `query` reproduces the code. */
    order: frameOrder.default('time'),
  })
  .strict();
export type RowCosineMergeConfig = z.infer<typeof rowCosineMergeConfig>;

/**
 * No merging, for the "temporal merge ✗" ablation (spec §5): every query is kept as its own group. Only the order
 * may change, so that the ablation differs from `row-cosine` in the merge alone.
 */
export const noMergeConfig = z
  .object({
    kind: z.literal('none'),
    /** Order of the frames (spec §10 D3). Default `time`, as for `row-cosine`; `query` makes this an exact identity. */
    order: frameOrder.default('time'),
  })
  .strict();
export type NoMergeConfig = z.infer<typeof noMergeConfig>;

/** Any temporal-merge config, discriminated on `kind`. */
export const tokenMergeConfig = z.discriminatedUnion('kind', [rowCosineMergeConfig, noMergeConfig]);
export type TokenMergeConfig = z.infer<typeof tokenMergeConfig>;
