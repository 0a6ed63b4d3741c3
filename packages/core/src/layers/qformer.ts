/**
 * The InstructBLIP Q-Former (Hugging Face `InstructBlipQFormerModel`), shared by B-VLLM's temporal and spatial
 * samplers (spec §1.0, §1.1 (a), (c)). Reads top to bottom: config, embeddings, attention, FFN, layer, model.
 *
 * Semantics: learned queries `[B, Q, Cq]` are prepended to the question's BERT word + position embeddings (the
 * queries get no position embedding), one LayerNorm runs over the concatenation, then post-LN BERT layers with
 * bidirectional self-attention over [queries; text] (pad keys masked), cross-attention to the visual states for the
 * query positions only in every `crossAttentionFrequency`-th layer, and separate FFNs for query and text positions.
 * Parameters use the HF state-dict names under `prefix` (`embeddings.layernorm`, `…attention.attention.query`);
 * `qformer-keys.ts` maps the original LAVIS names onto them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { ConfigError, InvalidArgumentError } from '../errors.js';
import type { ParameterStore } from '../parameter-store.js';
import { assertShape } from '../shapes.js';
import { activation } from './activations.js';
import { attention, mergeHeads, paddingBias, splitHeads } from './attention.js';
import { Linear } from './linear.js';
import { LayerNorm } from './norms.js';

/** The hyper-parameters the forward pass reads. Defaults are InstructBLIP's (bert-base-uncased + `[DEC]`). */
export interface QFormerConfig {
  /** Cq, the Q-Former width. */
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** FFN hidden width. */
  intermediateSize: number;
  vocabSize: number;
  /** Longest question (in tokens) the position table covers. */
  maxPositions: number;
  /** Width of the visual states the queries cross-attend to (Cv). */
  encoderHiddenSize: number;
  /** Layer i cross-attends iff `i % crossAttentionFrequency === 0`. */
  crossAttentionFrequency: number;
  layerNormEps: number;
  /** HF `hidden_act`. */
  hiddenAct: string;
}

/** InstructBLIP's Q-Former: `InstructBlipQFormerConfig` defaults with `encoder_hidden_size` 1408 (EVA-ViT-g). */
export const instructBlipQFormerConfig: Readonly<QFormerConfig> = {
  hiddenSize: 768,
  numLayers: 12,
  numHeads: 12,
  intermediateSize: 3072,
  vocabSize: 30523,
  maxPositions: 512,
  encoderHiddenSize: 1408,
  crossAttentionFrequency: 2,
  layerNormEps: 1e-12,
  hiddenAct: 'gelu',
};

/**
 * Our own (strict) config for a Q-Former inside a pipeline stage. `encoderHiddenSize` is absent: it is the vision
 * width Cv, fixed by the neighbouring stage. Every default is InstructBLIP's bert-base Q-Former (spec §1.0).
 */
export const qformerConfigSchema = z
  .object({
    /** Cq, the Q-Former width. InstructBLIP: 768. */
    hiddenSize: z.number().int().positive().default(instructBlipQFormerConfig.hiddenSize),
    /** BERT layers. InstructBLIP: 12. */
    numLayers: z.number().int().positive().default(instructBlipQFormerConfig.numLayers),
    /** Attention heads. InstructBLIP: 12. */
    numHeads: z.number().int().positive().default(instructBlipQFormerConfig.numHeads),
    /** FFN width. InstructBLIP: 3072. */
    intermediateSize: z.number().int().positive().default(instructBlipQFormerConfig.intermediateSize),
    /** BERT vocabulary plus InstructBLIP's `[DEC]`: 30523. */
    vocabSize: z.number().int().positive().default(instructBlipQFormerConfig.vocabSize),
    /** Position table length: 512. */
    maxPositions: z.number().int().positive().default(instructBlipQFormerConfig.maxPositions),
    /** Cross-attention in every 2nd layer (LAVIS `cross_attention_freq`). */
    crossAttentionFrequency: z.number().int().positive().default(instructBlipQFormerConfig.crossAttentionFrequency),
    /** BERT's 1e-12. */
    layerNormEps: z.number().positive().default(instructBlipQFormerConfig.layerNormEps),
    /** HF `hidden_act`; exact GELU. */
    hiddenAct: z.enum(['gelu', 'gelu_pytorch_tanh', 'gelu_new', 'silu', 'quick_gelu']).default('gelu'),
  })
  .strict()
  .refine((c) => c.hiddenSize % c.numHeads === 0, { message: 'hiddenSize must be a multiple of numHeads', path: ['hiddenSize'] });

// HF config.json is not ours: read only the fields the forward pass uses, fill InstructBLIP defaults, ignore the rest.
const hfQFormerConfig = z
  .object({
    hidden_size: z.number().int().positive().default(instructBlipQFormerConfig.hiddenSize),
    num_hidden_layers: z.number().int().positive().default(instructBlipQFormerConfig.numLayers),
    num_attention_heads: z.number().int().positive().default(instructBlipQFormerConfig.numHeads),
    intermediate_size: z.number().int().positive().default(instructBlipQFormerConfig.intermediateSize),
    vocab_size: z.number().int().positive().default(instructBlipQFormerConfig.vocabSize),
    max_position_embeddings: z.number().int().positive().default(instructBlipQFormerConfig.maxPositions),
    encoder_hidden_size: z.number().int().positive().default(instructBlipQFormerConfig.encoderHiddenSize),
    cross_attention_frequency: z.number().int().positive().default(instructBlipQFormerConfig.crossAttentionFrequency),
    layer_norm_eps: z.number().positive().default(instructBlipQFormerConfig.layerNormEps),
    hidden_act: z.string().default(instructBlipQFormerConfig.hiddenAct),
    position_embedding_type: z.literal('absolute').default('absolute'),
  })
  .passthrough();

/** Reads an HF `InstructBlipQFormerConfig` (`qformer_config` of a full InstructBLIP config, or the bare object). */
export function qformerConfigFromHf(json: Record<string, unknown>): QFormerConfig {
  const source = (json.qformer_config as Record<string, unknown> | undefined) ?? json;
  const result = hfQFormerConfig.safeParse(source);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new ConfigError(`qformer config: ${issue.path.join('.')}: ${issue.message}`, issue.path, { cause: result.error });
  }
  const c = result.data;
  const config: QFormerConfig = {
    hiddenSize: c.hidden_size,
    numLayers: c.num_hidden_layers,
    numHeads: c.num_attention_heads,
    intermediateSize: c.intermediate_size,
    vocabSize: c.vocab_size,
    maxPositions: c.max_position_embeddings,
    encoderHiddenSize: c.encoder_hidden_size,
    crossAttentionFrequency: c.cross_attention_frequency,
    layerNormEps: c.layer_norm_eps,
    hiddenAct: c.hidden_act,
  };
  if (config.hiddenSize % config.numHeads !== 0)
    throw new ConfigError(`qformer config: hidden_size ${config.hiddenSize} is not a multiple of num_attention_heads ${config.numHeads}`, ['hidden_size']);
  activation(config.hiddenAct);
  return config;
}

/**
 * `table[ids]` `[L, C]` whose gradient is a scatter-add into the table. tf.gather's own gradient needs the
 * UnsortedSegmentSum kernel, which the WASM backend lacks; ScatterNd sums duplicate ids the same way.
 */
function gatherRows(table: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [t, i, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([i]);
    return {
      value: tf.gather(t, i),
      // The ids are integers and get no gradient; the tape asks for a float tensor of their shape all the same.
      gradFunc: (dy: tf.Tensor, [saved]: tf.Tensor[]) => [tf.scatterND(tf.reshape(saved, [-1, 1]), dy, t.shape), tf.zeros(saved.shape)],
    };
  })(table, ids);
}

/** `LN(h + Dense(MHA(h, states)))`: BERT's post-LN attention block, for self- and cross-attention alike. */
class QFormerAttention {
  private readonly query: Linear;
  private readonly key: Linear;
  private readonly value: Linear;
  private readonly dense: Linear;
  private readonly norm: LayerNorm;

  constructor(store: ParameterStore, prefix: string, c: QFormerConfig, keyWidth: number, trainable: boolean) {
    this.query = new Linear(store, `${prefix}.attention.query`, c.hiddenSize, c.hiddenSize, { trainable });
    this.key = new Linear(store, `${prefix}.attention.key`, keyWidth, c.hiddenSize, { trainable });
    this.value = new Linear(store, `${prefix}.attention.value`, keyWidth, c.hiddenSize, { trainable });
    this.dense = new Linear(store, `${prefix}.output.dense`, c.hiddenSize, c.hiddenSize, { trainable });
    this.norm = new LayerNorm(store, `${prefix}.output.LayerNorm`, c.hiddenSize, c.layerNormEps, trainable);
  }

  /** h `[B, L, Cq]`, states `[B, Lk, keyWidth]`, bias broadcastable to `[B, H, L, Lk]` → `[B, L, Cq]`. */
  apply(h: tf.Tensor, states: tf.Tensor, heads: number, bias?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const q = splitHeads(this.query.apply(h), heads);
      const k = splitHeads(this.key.apply(states), heads);
      const v = splitHeads(this.value.apply(states), heads);
      const context = mergeHeads(attention(q, k, v, { bias }));
      return this.norm.apply(tf.add(h, this.dense.apply(context)));
    });
  }
}

/** `LN(h + Dense2(act(Dense1 h)))`; the query and text positions each have one (`*_query` and plain keys). */
class QFormerFeedForward {
  private readonly up: Linear;
  private readonly down: Linear;
  private readonly norm: LayerNorm;

  constructor(store: ParameterStore, prefix: string, suffix: '' | '_query', c: QFormerConfig, trainable: boolean) {
    this.up = new Linear(store, `${prefix}.intermediate${suffix}.dense`, c.hiddenSize, c.intermediateSize, { trainable });
    this.down = new Linear(store, `${prefix}.output${suffix}.dense`, c.intermediateSize, c.hiddenSize, { trainable });
    this.norm = new LayerNorm(store, `${prefix}.output${suffix}.LayerNorm`, c.hiddenSize, c.layerNormEps, trainable);
  }

  apply(h: tf.Tensor, act: (x: tf.Tensor) => tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.norm.apply(tf.add(h, this.down.apply(act(this.up.apply(h))))));
  }
}

class QFormerLayer {
  private readonly selfAttention: QFormerAttention;
  private readonly crossAttention?: QFormerAttention;
  private readonly queryFeedForward: QFormerFeedForward;
  private readonly textFeedForward: QFormerFeedForward;

  constructor(store: ParameterStore, prefix: string, index: number, private readonly c: QFormerConfig, trainable: boolean) {
    this.selfAttention = new QFormerAttention(store, `${prefix}.attention`, c, c.hiddenSize, trainable);
    if (index % c.crossAttentionFrequency === 0)
      this.crossAttention = new QFormerAttention(store, `${prefix}.crossattention`, c, c.encoderHiddenSize, trainable);
    this.queryFeedForward = new QFormerFeedForward(store, prefix, '_query', c, trainable);
    this.textFeedForward = new QFormerFeedForward(store, prefix, '', c, trainable);
  }

  /** x `[B, Q + Lt, Cq]` → same; only the first Q positions see the encoder states. */
  apply(x: tf.Tensor, numQueries: number, selfBias: tf.Tensor, encoder: tf.Tensor, encoderBias: tf.Tensor | undefined, act: (x: tf.Tensor) => tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [b, length, width] = x.shape as [number, number, number];
      const a = this.selfAttention.apply(x, x, this.c.numHeads, selfBias);
      let queries = tf.slice(a, [0, 0, 0], [b, numQueries, width]);
      if (this.crossAttention) queries = this.crossAttention.apply(queries, encoder, this.c.numHeads, encoderBias);
      const queryOut = this.queryFeedForward.apply(queries, act);
      if (length === numQueries) return queryOut;
      const textOut = this.textFeedForward.apply(tf.slice(a, [0, numQueries, 0], [b, length - numQueries, width]), act);
      return tf.concat([queryOut, textOut], 1);
    });
  }
}

/** Inputs of {@link QFormer.forward}. B is the batch (1 for frame selection, K' for spatial sampling). */
export interface QFormerInputs {
  /** Learned queries, shared over the batch when the first dim is 1. `[B or 1, Q, Cq]` */
  queryEmbeds: tf.Tensor;
  /** Question ids, right-padded. int32 `[B, Lt]` */
  inputIds: tf.Tensor;
  /** 1 = token, 0 = pad; covers the text only (the queries are always attended). int32 `[B, Lt]` */
  attentionMask: tf.Tensor;
  /** Visual states the queries cross-attend to. `[B, Le, encoderHiddenSize]` */
  encoderHiddenStates: tf.Tensor;
  /** 1 = attend; all ones when omitted. `[B, Le]` */
  encoderAttentionMask?: tf.Tensor;
}

export interface QFormerOutputs {
  /** Every position, queries first. `[B, Q + Lt, Cq]` */
  lastHiddenState: tf.Tensor3D;
  /** After the embedding LayerNorm; only with `intermediates`. `[B, Q + Lt, Cq]` */
  embeddingOutput?: tf.Tensor3D;
  /** Each layer's output; only with `intermediates`. numLayers × `[B, Q + Lt, Cq]` */
  layerOutputs?: tf.Tensor3D[];
}

/** The Q-Former body. The queries are not owned here: HF keeps `query_tokens` beside the Q-Former, and so do we. */
export class QFormer {
  private readonly wordEmbeddings: tf.Variable;
  private readonly positionEmbeddings: tf.Variable;
  private readonly embeddingNorm: LayerNorm;
  private readonly layers: QFormerLayer[] = [];
  private readonly act: (x: tf.Tensor) => tf.Tensor;

  constructor(
    store: ParameterStore,
    /** Key prefix including its trailing dot (`vlm_att_encoder_temporal.`), or '' for a bare Q-Former checkpoint. */
    readonly prefix: string,
    readonly config: Readonly<QFormerConfig>,
    options: { trainable?: boolean } = {},
  ) {
    const trainable = options.trainable ?? true;
    const c = config;
    // HF `_init_weights`: normal(0, initializer_range 0.02) for embeddings and Linear weights.
    this.wordEmbeddings = store.create(`${prefix}embeddings.word_embeddings.weight`, [c.vocabSize, c.hiddenSize], { kind: 'normal', std: 0.02 }, trainable);
    this.positionEmbeddings = store.create(`${prefix}embeddings.position_embeddings.weight`, [c.maxPositions, c.hiddenSize], { kind: 'normal', std: 0.02 }, trainable);
    this.embeddingNorm = new LayerNorm(store, `${prefix}embeddings.layernorm`, c.hiddenSize, c.layerNormEps, trainable);
    for (let i = 0; i < c.numLayers; i++) this.layers.push(new QFormerLayer(store, `${prefix}encoder.layer.${i}`, i, c, trainable));
    this.act = activation(c.hiddenAct);
  }

  /** `[queries ; word + position embeddings of the text]`, then the embedding LayerNorm. → `[B, Q + Lt, Cq]` */
  private embed(queryEmbeds: tf.Tensor, inputIds: tf.Tensor, batch: number): tf.Tensor {
    return tf.tidy(() => {
      const length = inputIds.shape[1]!;
      const words = tf.reshape(gatherRows(this.wordEmbeddings, tf.reshape(tf.cast(inputIds, 'int32'), [-1])), [batch, length, this.config.hiddenSize]);
      // Positions count from 0 at the first text token: the queries do not shift them (HF `past_key_values_length` 0).
      const positions = tf.slice(this.positionEmbeddings, [0, 0], [length, this.config.hiddenSize]);
      const text = tf.add(words, positions);
      const queries = queryEmbeds.shape[0] === batch ? queryEmbeds : tf.tile(queryEmbeds, [batch, 1, 1]);
      return this.embeddingNorm.apply(tf.concat([queries, text], 1));
    });
  }

  forward(inputs: QFormerInputs, options: { intermediates?: boolean } = {}): QFormerOutputs {
    const c = this.config;
    const { queryEmbeds, inputIds, attentionMask, encoderHiddenStates, encoderAttentionMask } = inputs;
    assertShape('qformer inputIds', inputIds, ['B', 'Lt']);
    const [batch, textLength] = inputIds.shape as [number, number];
    assertShape('qformer attentionMask', attentionMask, [batch, textLength]);
    assertShape('qformer queryEmbeds', queryEmbeds, ['B', 'Q', c.hiddenSize]);
    if (queryEmbeds.shape[0] !== 1 && queryEmbeds.shape[0] !== batch) assertShape('qformer queryEmbeds', queryEmbeds, [batch, 'Q', c.hiddenSize]);
    assertShape('qformer encoderHiddenStates', encoderHiddenStates, [batch, 'Le', c.encoderHiddenSize]);
    if (encoderAttentionMask) assertShape('qformer encoderAttentionMask', encoderAttentionMask, [batch, encoderHiddenStates.shape[1]!]);
    if (textLength > c.maxPositions)
      throw new InvalidArgumentError('qformer inputIds', `${textLength} text tokens exceed max_position_embeddings ${c.maxPositions}`);
    const numQueries = queryEmbeds.shape[1]!;

    const keep: tf.Tensor[] = [];
    const lastHiddenState = tf.tidy(() => {
      const selfBias = paddingBias(tf.concat([tf.ones([batch, numQueries], 'int32'), tf.cast(attentionMask, 'int32')], 1));
      const encoderBias = encoderAttentionMask ? paddingBias(encoderAttentionMask) : undefined;
      let x = this.embed(queryEmbeds, inputIds, batch);
      if (options.intermediates) keep.push(tf.keep(x));
      for (const layer of this.layers) {
        x = layer.apply(x, numQueries, selfBias, encoderHiddenStates, encoderBias, this.act);
        if (options.intermediates) keep.push(tf.keep(x));
      }
      return options.intermediates ? x.clone() : x;
    }) as tf.Tensor3D;
    if (!options.intermediates) return { lastHiddenState };
    const [embeddingOutput, ...layerOutputs] = keep as tf.Tensor3D[];
    return { lastHiddenState, embeddingOutput, layerOutputs };
  }

  /** The query positions of the last layer, what B-VLLM uses: `[B, Q, Cq]`. */
  queryOutput(inputs: QFormerInputs): tf.Tensor3D {
    const { lastHiddenState } = this.forward(inputs);
    const [batch, , width] = lastHiddenState.shape;
    const out = tf.slice(lastHiddenState, [0, 0, 0], [batch, inputs.queryEmbeds.shape[1]!, width]);
    lastHiddenState.dispose();
    return out;
  }
}
