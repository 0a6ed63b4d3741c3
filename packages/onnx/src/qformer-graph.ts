/**
 * The InstructBLIP Q-Former (HF `InstructBlipQFormerModel`, core's `QFormer`) as ONNX nodes, shared by B-VLLM's
 * temporal and spatial sampler exports (spec §1.1 (a), (c)). Same semantics as core's tfjs implementation:
 * `LN([queries ; word + position embeddings])`, then post-LN BERT layers with bidirectional self-attention over
 * all positions (pad keys masked), cross-attention of the query positions to the encoder states in every
 * `crossAttentionFrequency`-th layer, and separate FFNs for query and text positions.
 * Shapes: B batch, Q queries, Lt text tokens, Le encoder positions, Cq width, Cv encoder width.
 */
import type { QFormerConfig } from '@bvllm/core';
import type { GraphBuilder } from './graph-builder.js';
import { MASKED_SCORE, layerNorm, linear } from './layers.js';
import { weightInitializer, type GraphWeights, type WeightInput } from './weights.js';
import { hfActivation, multiHeadAttention } from './transformer-blocks.js';

/** The Q-Former's graph values. */
export interface QFormerGraphInput {
  /** Learned queries `[1, Q, Cq]` (shared over the batch) or `[B, Q, Cq]`. */
  queries: string;
  /** Q, the query count (the second dim of `queries`). */
  numQueries: number;
  /** Question ids, right-padded. int64 `[B, Lt]` */
  inputIds: string;
  /** 1 = token, 0 = pad, over the text only. int64 `[B, Lt]` */
  attentionMask: string;
  /** Visual states the queries attend to, all attended. float32 `[B, Le, Cv]` */
  encoderStates: string;
}

export interface QFormerGraphOptions {
  /** Return every position `[B, Q + Lt, Cq]`; by default only the queries `[B, Q, Cq]` (what B-VLLM reads). */
  allPositions?: boolean;
}

/** Reads one weight by its checkpoint key (prefix included): `(key) => weights.get(key)` for {@link GraphWeights}. */
export type WeightLookup = (key: string) => WeightInput;

const TO_END = Number.MAX_SAFE_INTEGER;

/** `LN(h + Dense(MHA(h, states)))`; q/k/v are fused into one MatMul when `h` and `states` are the same value. */
function attentionBlock(g: GraphBuilder, w: WeightLookup, prefix: string, c: QFormerConfig, h: string, states: string, bias?: string): string {
  const p = (name: string) => `${prefix}.attention.${name}`;
  const headDim = c.hiddenSize / c.numHeads;
  let q: string;
  let k: string;
  let v: string;
  if (h === states) {
    const qkv = linear(g, h, `${prefix}.qkv`, ['query', 'key', 'value'].map((n) => w(`${p(n)}.weight`)), ['query', 'key', 'value'].map((n) => w(`${p(n)}.bias`)));
    [q, k, v] = [0, 1, 2].map((i) => g.op.slice(qkv, [i * c.hiddenSize], [(i + 1) * c.hiddenSize], [-1]));
  } else {
    q = linear(g, h, p('query'), w(`${p('query')}.weight`), w(`${p('query')}.bias`));
    const kv = linear(g, states, `${prefix}.kv`, [w(`${p('key')}.weight`), w(`${p('value')}.weight`)], [w(`${p('key')}.bias`), w(`${p('value')}.bias`)]);
    [k, v] = [0, 1].map((i) => g.op.slice(kv, [i * c.hiddenSize], [(i + 1) * c.hiddenSize], [-1]));
  }
  const context = multiHeadAttention(g, q, k, v, c.numHeads, headDim, bias);
  const dense = linear(g, context, `${prefix}.output.dense`, w(`${prefix}.output.dense.weight`), w(`${prefix}.output.dense.bias`));
  return layerNorm(g, g.op.add(h, dense), `${prefix}.output.LayerNorm`, w(`${prefix}.output.LayerNorm.weight`), w(`${prefix}.output.LayerNorm.bias`), c.layerNormEps);
}

/** `LN(h + Dense2(act(Dense1 h)))` with the `_query` (query positions) or plain (text positions) weights. */
function feedForward(g: GraphBuilder, w: WeightLookup, prefix: string, suffix: '' | '_query', c: QFormerConfig, h: string): string {
  const up = `${prefix}.intermediate${suffix}.dense`;
  const down = `${prefix}.output${suffix}.dense`;
  const norm = `${prefix}.output${suffix}.LayerNorm`;
  const inner = hfActivation(g, linear(g, h, up, w(`${up}.weight`), w(`${up}.bias`)), c.hiddenAct);
  const out = linear(g, inner, down, w(`${down}.weight`), w(`${down}.bias`));
  return layerNorm(g, g.op.add(h, out), norm, w(`${norm}.weight`), w(`${norm}.bias`), c.layerNormEps);
}

/**
 * Appends the Q-Former under `prefix` (its checkpoint key prefix with the trailing dot, e.g.
 * `vlm_att_encoder_spatial.`) and returns the last layer's output: `[B, Q, Cq]`, or `[B, Q + Lt, Cq]` with
 * `allPositions`. The last layer's text FFN is skipped unless its output is wanted.
 */
export function qformerGraph(g: GraphBuilder, weights: WeightLookup, prefix: string, config: QFormerConfig, input: QFormerGraphInput, options: QFormerGraphOptions = {}): string {
  const c = config;
  const w = (key: string) => weights(`${prefix}${key}`);
  const name = (key: string) => `${prefix}${key}`;
  const q = input.numQueries;

  // Embeddings: text positions count from 0 at the first text token; the queries get none.
  const table = weightInitializer(g, name('embeddings.word_embeddings.weight'), w('embeddings.word_embeddings.weight'));
  const positionTable = weightInitializer(g, name('embeddings.position_embeddings.weight'), w('embeddings.position_embeddings.weight'));
  const positions = g.op.slice(positionTable, [0], g.op.shape(input.inputIds, 1, 2), [0]);
  const text = g.op.add(g.op.gather(table, input.inputIds, 0), positions);
  const batch = g.op.concat([g.op.shape(input.inputIds, 0, 1), g.int64([1, 1])], 0);
  const queries = g.op.expand(input.queries, batch);
  let x = layerNorm(g, g.op.concat([queries, text], 1), name('embeddings.layernorm'), w('embeddings.layernorm.weight'), w('embeddings.layernorm.bias'), c.layerNormEps);

  // Key mask [1]*Q ++ attention_mask, as an additive bias [B, 1, 1, Q + Lt].
  const keyMask = g.node1('Pad', [input.attentionMask, g.int64([0, q, 0, 0]), g.int64([1], true)]);
  const selfBias = g.op.unsqueeze(g.op.where(g.op.equal(keyMask, g.int64([0], true)), g.float(MASKED_SCORE), g.float(0)), [1, 2]);

  for (let i = 0; i < c.numLayers; i++) {
    const layer = `${prefix}encoder.layer.${i}`;
    const a = attentionBlock(g, weights, `${layer}.attention`, c, x, x, selfBias);
    let queryPart = g.op.slice(a, [0], [q], [1]);
    if (i % c.crossAttentionFrequency === 0) queryPart = attentionBlock(g, weights, `${layer}.crossattention`, c, queryPart, input.encoderStates);
    const queryOut = feedForward(g, weights, layer, '_query', c, queryPart);
    if (i === c.numLayers - 1 && !options.allPositions) return queryOut;
    const textOut = feedForward(g, weights, layer, '', c, g.op.slice(a, [q], [TO_END], [1]));
    x = g.op.concat([queryOut, textOut], 1);
  }
  return x;
}
