/**
 * The "MLP projection" from Q-Former tokens to the LLM width (spec §1.1 (e), §10 D9). The official one is two
 * stacked Linear layers with no activation between them (`vlm_att_projector_spatial` Cq→Cv, then
 * `vlm_att_val_projector_spatial` Cv→D); `mlp2x_gelu` is LLaVA's projector, kept as an ablation.
 */
import {
  Linear,
  ParameterStore,
  StoreBackedStage,
  StageRegistry,
  assertShape,
  gelu,
  tf,
  type SpatialTokens,
  type Stage,
  type StageContext,
  type StageDependencies,
  type VisualEmbeds,
} from '@bvllm/core';
import { z } from 'zod';

export const linear2ProjectorConfig = z
  .object({
    kind: z.literal('linear2'),
    /** Width between the two layers; the code uses Cv (1408, `bvlm_arch.py:141-143`), the default when absent. */
    hiddenDim: z.number().int().positive().optional(),
  })
  .strict();

export const mlp2xGeluProjectorConfig = z
  .object({
    kind: z.literal('mlp2x_gelu'),
    /** Width between the two layers; LLaVA's `mlp2x_gelu` uses D, the default when absent. */
    hiddenDim: z.number().int().positive().optional(),
  })
  .strict();

export const projectorConfig = z.discriminatedUnion('kind', [linear2ProjectorConfig, mlp2xGeluProjectorConfig]);
export type ProjectorConfig = z.infer<typeof projectorConfig>;

/** Checkpoint keys of the two layers of each kind: the official module names, and LLaVA's `nn.Sequential` indices. */
export const PROJECTOR_KEYS = {
  linear2: ['vlm_att_projector_spatial', 'vlm_att_val_projector_spatial'],
  mlp2x_gelu: ['mm_projector.0', 'mm_projector.2'],
} as const;

/**
 * Maps `spatialTokens` `[K', R, Cq]` to the visual embeddings `[M, D]` with M = K'·R, frame-major: all tokens of
 * the first kept frame, then the next (spec §1.1 (e)); no separators or time embeddings.
 */
export class Projector extends StoreBackedStage implements Stage<ProjectorConfig, SpatialTokens, VisualEmbeds> {
  readonly kind: ProjectorConfig['kind'];
  private readonly first: Linear;
  private readonly second: Linear;

  /** `inDim` is Cq, `outDim` is D; `hiddenDim` falls back to `defaultHidden` (see the config fields). */
  constructor(
    readonly config: ProjectorConfig,
    deps: { rng: StageDependencies['rng']; inDim: number; outDim: number; defaultHidden: number },
  ) {
    super(new ParameterStore(`projector.${config.kind}`, deps.rng));
    this.kind = config.kind;
    const hidden = config.hiddenDim ?? deps.defaultHidden;
    const [firstKey, secondKey] = PROJECTOR_KEYS[config.kind];
    this.first = new Linear(this.store, firstKey, deps.inDim, hidden);
    this.second = new Linear(this.store, secondKey, hidden, deps.outDim);
  }

  apply(input: SpatialTokens, _context?: StageContext): VisualEmbeds {
    assertShape('spatialTokens', input.spatialTokens, ["K'", 'R', this.first.inFeatures]);
    return tf.tidy(() => {
      const flat = tf.reshape(input.spatialTokens, [-1, this.first.inFeatures]);
      const hidden = this.first.apply(flat);
      return this.second.apply(this.kind === 'mlp2x_gelu' ? gelu(hidden) : hidden) as VisualEmbeds;
    });
  }
}

/**
 * The projector slot. Needs `dims.Cq` (input) and `dims.D` (LLM width); `linear2` also reads `dims.Cv` for its
 * default hidden width.
 */
export const projectorRegistry = new StageRegistry<Projector>('projector')
  .register<z.infer<typeof linear2ProjectorConfig>>('linear2', {
    schema: linear2ProjectorConfig,
    description: 'two stacked Linear layers without activation, Cq→Cv→D (official, spec §1.1 (e))',
    create: (config, deps) => new Projector(config, { rng: deps.rng, inDim: deps.dims.Cq, outDim: deps.dims.D, defaultHidden: deps.dims.Cv }),
  })
  .register<z.infer<typeof mlp2xGeluProjectorConfig>>('mlp2x_gelu', {
    schema: mlp2xGeluProjectorConfig,
    description: "LLaVA's Linear→GELU→Linear, Cq→D→D (ablation, spec §10 D9)",
    create: (config, deps) => new Projector(config, { rng: deps.rng, inDim: deps.dims.Cq, outDim: deps.dims.D, defaultHidden: deps.dims.D }),
  });
