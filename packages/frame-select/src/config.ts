/** Config schemas of the frame-selection kinds, discriminated on `kind` (spec §1.1 (a), §5, §10). */
import { qformerConfigSchema } from '@bvllm/core';
import { z } from 'zod';

/** The official text-conditioned selector: temporal Q-Former + Gumbel-softmax over frames (spec §1.1 (a)). */
export const qformerGumbelConfig = z
  .object({
    kind: z.literal('qformer-gumbel'),
    /** K (L*), the number of selection queries and so of selected frames. Code: 16; paper: 32 (D1). */
    numQueries: z.number().int().positive().default(32),
    /** Rows of `vlm_att_query_temporal` stored; the first K are used. InstructBLIP has 32 (spec §1.0, D14). */
    numQueryTokens: z.number().int().positive().default(32),
    /** Gumbel-softmax temperature τ. Code: 0.5; the paper note's 0.1 is unverified (D2). */
    tau: z.number().positive().default(0.5),
    /** Logit scale applied to S before the noise is added. Omitted: 1/√Cv, as the code (D2). */
    logitScale: z.number().positive().optional(),
    /**
     * Weights outside training (D4): `gumbel` draws noise from the context's seeded generator as the code does at
     * eval (reproducible per seed); `none` is softmax(S/τ); `hard` is the one-hot argmax of S.
     */
    inferenceNoise: z.enum(['gumbel', 'none', 'hard']).default('gumbel'),
    /** While training, one-hot forward with the soft weights' gradient. The code trains soft (D5). */
    straightThrough: z.boolean().default(false),
    /**
     * Per-frame feature the queries attend to and are scored against: the raw [CLS] token (code, D10), or the
     * mean / max over the raw patches (the paper's [CLS]-vs-pooling ablation, spec §5).
     */
    selectionFeature: z.enum(['cls', 'mean', 'max']).default('cls'),
    /** eps of the temporal LayerNorm `vlm_att_ln_temporal` (LAVIS `ln_vision`, nn.LayerNorm default 1e-5). */
    lnEps: z.number().positive().default(1e-5),
    /** The temporal Q-Former's shape; InstructBLIP's bert-base by default. */
    qformer: qformerConfigSchema.default({}),
  })
  .strict()
  .refine((c) => c.numQueries <= c.numQueryTokens, {
    message: 'numQueries (K) must not exceed numQueryTokens, the stored query rows',
    path: ['numQueries'],
  });
export type QFormerGumbelConfig = z.infer<typeof qformerGumbelConfig>;

/** VideoLLaMA2-style baseline: K evenly spaced frames, one-hot weights, no text conditioning (spec §5 row 1). */
export const uniformSelectConfig = z
  .object({
    kind: z.literal('uniform'),
    /** K, frames kept. The selector's default K, so the ablation compares equal budgets (D1). */
    numFrames: z.number().int().positive().default(32),
    /** eps of the temporal LayerNorm the patches still go through (D10). */
    lnEps: z.number().positive().default(1e-5),
  })
  .strict();
export type UniformSelectConfig = z.infer<typeof uniformSelectConfig>;

/** No selection: every frame is kept (K = T), for short clips and as the upper-bound ablation. */
export const allSelectConfig = z
  .object({
    kind: z.literal('all'),
    /** eps of the temporal LayerNorm the patches still go through (D10). */
    lnEps: z.number().positive().default(1e-5),
  })
  .strict();
export type AllSelectConfig = z.infer<typeof allSelectConfig>;

export type FrameSelectConfig = QFormerGumbelConfig | UniformSelectConfig | AllSelectConfig;
