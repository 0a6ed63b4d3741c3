/**
 * Exports a Qwen2 decoder (a config plus weights by HF key, issue #18) to the two ONNX graphs transformers.js and optimum use for vision-language decoders
 * (the interface of `shared/fixtures/qwen2-tiny-s2-onnx`):
 *
 * - `embed_tokens.onnx`: `input_ids` int64 `[batch_size, sequence_length]` → `inputs_embeds` `[.., .., D]`.
 * - `decoder_model_merged.onnx`: `inputs_embeds` `[B, L, D]`, `attention_mask` int64 `[B, P + L]` (past and
 *   current, 1 = attend), `position_ids` int64 `[B, L]`, `past_key_values.{i}.key|value` `[B, Hkv, P, d]` →
 *   `logits` `[B, L, V]` and `present.{i}.key|value` `[B, Hkv, P + L, d]` = concat(past, new), keys after rotary,
 *   one entry per KV head (grouped-query attention, not repeated). Causality inside the chunk is in the graph.
 * - `config.json`: the HF Qwen2 config, so the folder describes itself.
 *
 * Speed: every projection is a MatMul on a weight transposed once at export; q/k/v and gate/up are fused into one
 * MatMul each (fewer, larger products per step); rotary is one `RotaryEmbedding` node over a cos/sin table made at
 * export, each residual add is fused with the RMSNorm after it (`SkipSimplifiedLayerNormalization`), and the mask
 * bias is built once per call and shared by all layers. Weights are {@link GraphWeights} under the HF `Qwen2ForCausalLM` keys (`model.*`, `lm_head.weight`;
 * a tied model's head is `model.embed_tokens.weight`): a checkpoint read one tensor at a time (`sourceWeights`), or a
 * tfjs model ({@link qwen2Weights}). A LoRA adapter must be merged first (`adapter.merge()`, or a merged source).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  GraphBuilder,
  addLinearWeight,
  convertToFloat16,
  causalPaddingBias,
  groupedQueryAttention,
  linear,
  quantizeGraph,
  rmsNorm,
  rotaryCache,
  rotaryEmbedding,
  silu,
  skipRmsNorm,
  splitHeads,
  tensorWeights,
  toFloat16,
  weightDims,
  weightInitializer,
  weightValues,
  writeModel,
  type GraphWeights,
  type QuantizePassResult,
  type QuantizePreset,
} from '@bvllm/onnx';
import { ORT_DECODER_FILE, ORT_EMBED_FILE } from '../ort/ort-decoder.js';
import { headDimOf, type Qwen2Config } from '../qwen2-config.js';
import type { Qwen2Model } from '../qwen2-model.js';

/** Bump when the graphs change, so cached exports are rebuilt. */
export const QWEN2_ONNX_EXPORTER_VERSION = '4';

/** The symbolic dims of the transformers.js layout; `batch_size` on the past inputs is load-bearing (fixture README). */
const BATCH = 'batch_size';
const SEQUENCE = 'sequence_length';
const PAST = 'past_sequence_length';
const TOTAL = 'past_sequence_length + sequence_length';

export interface Qwen2OnnxExportOptions {
  /**
   * Quantisation of every decoder MatMul, LM head included; float32 if absent. `int8`/`int4`: weight-only blocks of
   * 32 (MatMulNBits), `dynamic-int8`: int8 GEMM with activations quantised per call (`QUANT_PRESETS` in `@bvllm/onnx`).
   */
  quantize?: QuantizePreset;
  /** Write weights to `<file>.data` once a graph's initializers exceed this many bytes (default 1 GiB). */
  externalDataThreshold?: number;
  /**
   * `all` (default): logits `[B, L, V]` at every position, the transformers.js interface. `last`: logits `[B, 1, V]`
   * at the last position only (left padding keeps it real), which saves the head's `L − 1` rows in prefill (a
   * quarter of Qwen2-0.5B's prefill FLOPs); a runtime must then read the logits' own length, not the input's.
   */
  logitsFor?: 'all' | 'last';
  /** Default `float32`. `float16` stores the weights as f16 (graph inputs and outputs stay float32). */
  dtype?: 'float32' | 'float16';
  /**
   * The embedding table's storage: `float16` gathers f16 rows and casts them to float32 (exact for a BF16 checkpoint
   * within f16's range, and half of Qwen2-7B's 2.18 GB table). Default: `float16` with `quantize`, else `float32`.
   */
  embedTable?: 'float32' | 'float16';
}

export interface Qwen2OnnxExport {
  dir: string;
  embedTokens: string;
  decoder: string;
  /** Present when `quantize` was set: which weights were quantised and the bytes saved. */
  quantized?: QuantizePassResult;
}

/** A tfjs model's current weights under their HF keys (LoRA adapters are not applied: merge them first). */
export function qwen2Weights(model: Qwen2Model): GraphWeights {
  return tensorWeights(model.store);
}

/** The LM head `[V, D]`: `lm_head.weight`, or the embedding table when the model ties them. */
function headKey(config: Qwen2Config): string {
  return config.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
}

/** `embed_tokens.onnx`: a Gather of token rows (no scaling), from a float32 or float16 table. */
export function buildQwen2EmbedGraph(config: Qwen2Config, weights: GraphWeights, options: Pick<Qwen2OnnxExportOptions, 'embedTable'> = {}): GraphBuilder {
  const g = new GraphBuilder('qwen2_embed_tokens');
  const ids = g.input('input_ids', 'int64', [BATCH, SEQUENCE]);
  const key = 'model.embed_tokens.weight';
  const weight = weights.get(key);
  let rows: string;
  if (options.embedTable === 'float16') {
    const table = g.lazyInitializer(key, 'float16', weightDims(weight), () => toFloat16(weightValues(weight).data));
    rows = g.op.cast(g.op.gather(table, ids, 0), 'float32');
  } else rows = g.op.gather(weightInitializer(g, key, weight), ids, 0);
  g.output('inputs_embeds', 'float32', [BATCH, SEQUENCE, config.hiddenSize], rows);
  return g;
}

/**
 * One decoder layer after its input norm: `h` is RMSNorm(residual) `[B, L, D]`. Returns the MLP's output and the
 * residual sum after attention, so the caller fuses the next residual add with the next norm. Declares
 * `present.{i}.key|value`.
 */
function decoderLayer(g: GraphBuilder, config: Qwen2Config, weights: GraphWeights, i: number, residual: string, h: string, rope: { cos: string; sin: string }, positions: string, bias: string): { mlp: string; residual: string } {
  const { numHeads, numKvHeads, intermediateSize, rmsNormEps } = config;
  const d = headDimOf(config);
  const prefix = `model.layers.${i}`;
  const w = (key: string) => weights.get(`${prefix}.${key}`);
  const attn = (name: string, part: 'weight' | 'bias') => w(`self_attn.${name}.${part}`);
  // Qwen2 has biases on q, k, v only (modeling_qwen2.py `Qwen2Attention`).
  const qkvNames = ['q_proj', 'k_proj', 'v_proj'];
  const qkv = linear(g, h, `${prefix}.self_attn.qkv_proj`, qkvNames.map((n) => attn(n, 'weight')), qkvNames.map((n) => attn(n, 'bias')));
  const [q, k, v] = g.node('Split', [qkv, g.int64([numHeads * d, numKvHeads * d, numKvHeads * d])], 3, { axis: -1 });
  // Rotary on [B, L, heads·d] before the head split: one fused node each for queries and keys.
  const queries = splitHeads(g, rotaryEmbedding(g, q, positions, rope, numHeads), numHeads, d);
  const newKeys = splitHeads(g, rotaryEmbedding(g, k, positions, rope, numKvHeads), numKvHeads, d);
  const pastKey = g.input(`past_key_values.${i}.key`, 'float32', [BATCH, numKvHeads, PAST, d]);
  const pastValue = g.input(`past_key_values.${i}.value`, 'float32', [BATCH, numKvHeads, PAST, d]);
  const [keys] = g.node('Concat', [pastKey, newKeys], [`present.${i}.key`], { axis: 2 });
  const [values] = g.node('Concat', [pastValue, splitHeads(g, v, numKvHeads, d)], [`present.${i}.value`], { axis: 2 });
  const attended = groupedQueryAttention(g, { q: queries, k: keys, v: values, bias, numHeads, numKvHeads, headDim: d });
  const attention = linear(g, attended, `${prefix}.self_attn.o_proj`, attn('o_proj', 'weight'));
  const post = skipRmsNorm(g, attention, residual, `${prefix}.post_attention_layernorm`, w('post_attention_layernorm.weight'), rmsNormEps);
  const gateUp = linear(g, post.normed, `${prefix}.mlp.gate_up_proj`, [w('mlp.gate_proj.weight'), w('mlp.up_proj.weight')]);
  const [gate, up] = g.node('Split', [gateUp, g.int64([intermediateSize, intermediateSize])], 2, { axis: -1 });
  return { mlp: linear(g, g.op.mul(silu(g, gate), up), `${prefix}.mlp.down_proj`, w('mlp.down_proj.weight')), residual: post.sum };
}

/**
 * `decoder_model_merged.onnx` in the fixture's interface (inputs and outputs in its order). With `quantize`, each
 * layer's MatMuls are quantised as soon as the layer is built: eager weights are replaced by their codes at once, so
 * only one layer's float32 weights are held at a time; lazy ones are quantised as they are written.
 */
export function buildQwen2DecoderGraph(
  config: Qwen2Config,
  weights: GraphWeights,
  options: Pick<Qwen2OnnxExportOptions, 'quantize' | 'logitsFor'> = {},
): { graph: GraphBuilder; quantized?: QuantizePassResult } {
  const { quantize, logitsFor = 'all' } = options;
  const { hiddenSize, vocabSize, numKvHeads, numLayers, ropeTheta, rmsNormEps, maxPositionEmbeddings } = config;
  const d = headDimOf(config);
  const g = new GraphBuilder('qwen2_decoder_model_merged');
  const quantized: QuantizePassResult = { quantized: [], bytesBefore: 0, bytesAfter: 0 };
  const quantizeNew = () => {
    if (!quantize) return;
    const pass = quantizeGraph(g, quantize);
    quantized.quantized.push(...pass.quantized);
    quantized.bytesBefore += pass.bytesBefore;
    quantized.bytesAfter += pass.bytesAfter;
  };
  const embeds = g.input('inputs_embeds', 'float32', [BATCH, SEQUENCE, hiddenSize]);
  const mask = g.input('attention_mask', 'int64', [BATCH, TOTAL]);
  const positions = g.input('position_ids', 'int64', [BATCH, SEQUENCE]);
  const rope = rotaryCache(g, maxPositionEmbeddings, d, ropeTheta);
  const bias = causalPaddingBias(g, mask, embeds);
  // Each residual add is fused with the norm after it (the next layer's input norm, or the final norm).
  let residual = embeds;
  let h = rmsNorm(g, embeds, 'model.layers.0.input_layernorm', weights.get('model.layers.0.input_layernorm.weight'), rmsNormEps);
  for (let i = 0; i < numLayers; i++) {
    const layer = decoderLayer(g, config, weights, i, residual, h, rope, positions, bias);
    const [name, weight] = i + 1 < numLayers ? [`model.layers.${i + 1}.input_layernorm`, `model.layers.${i + 1}.input_layernorm.weight`] : ['model.norm', 'model.norm.weight'];
    ({ normed: h, sum: residual } = skipRmsNorm(g, layer.mlp, layer.residual, name, weights.get(weight), rmsNormEps));
    quantizeNew();
  }
  // The norm is per position: slicing after it skips the head's L − 1 other rows just the same.
  const normed = logitsFor === 'last' ? g.op.slice(h, [-1], [Number.MAX_SAFE_INTEGER], [1]) : h;
  // Tied or not, the head is its own transposed initializer: MatMul needs [D, V], the embedding Gather [V, D].
  const head = g.op.matMul(normed, addLinearWeight(g, 'lm_head.weight', [weights.get(headKey(config))]));
  quantizeNew();
  g.output('logits', 'float32', [BATCH, logitsFor === 'last' ? 1 : SEQUENCE, vocabSize], head);
  for (let i = 0; i < numLayers; i++) {
    g.output(`present.${i}.key`, 'float32', [BATCH, numKvHeads, TOTAL, d]);
    g.output(`present.${i}.value`, 'float32', [BATCH, numKvHeads, TOTAL, d]);
  }
  return { graph: g, quantized: quantize ? quantized : undefined };
}

/** The HF `config.json` of the exported model (Qwen2ForCausalLM), plus a note on how it was exported. */
export function qwen2HfConfig(c: Qwen2Config, options: Qwen2OnnxExportOptions = {}): Record<string, unknown> {
  return {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: headDimOf(c),
    hidden_act: 'silu',
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    max_position_embeddings: c.maxPositionEmbeddings,
    tie_word_embeddings: c.tieWordEmbeddings,
    torch_dtype: options.dtype ?? 'float32',
    bvllm_onnx: { exporter_version: QWEN2_ONNX_EXPORTER_VERSION, quantize: options.quantize ?? null, logits_for: options.logitsFor ?? 'all', dtype: options.dtype ?? 'float32', embed_table: options.embedTable ?? (options.quantize ? 'float16' : 'float32') },
  };
}

/**
 * Writes `embed_tokens.onnx`, `decoder_model_merged.onnx` and `config.json` into `outDir`. One graph is built and
 * written at a time. From lazy weights (a checkpoint) each tensor is read, transposed, fused, quantised or cast to
 * f16 and written one at a time, so memory holds a few tensors, not the model. From a tfjs model (Qwen2-0.5B shape,
 * random weights, 2-core machine, process RSS with the 3.8 GiB model included): float32 20 s, 6.7 GiB peak (1.9 GB
 * external data); int8 19–35 s, 5.4 GiB; int4 25 s, 4.4 GiB.
 */
export function exportQwen2Onnx(config: Qwen2Config, weights: GraphWeights, outDir: string, options: Qwen2OnnxExportOptions = {}): Qwen2OnnxExport {
  mkdirSync(outDir, { recursive: true });
  const write = (g: GraphBuilder, file: string) => {
    if (options.dtype === 'float16') convertToFloat16(g);
    return writeModel(g, join(outDir, file), { externalDataThreshold: options.externalDataThreshold }).path;
  };
  const embedTable = options.embedTable ?? (options.quantize ? 'float16' : 'float32');
  const embedTokens = write(buildQwen2EmbedGraph(config, weights, { embedTable }), ORT_EMBED_FILE);
  const { graph, quantized } = buildQwen2DecoderGraph(config, weights, options);
  const decoder = write(graph, ORT_DECODER_FILE);
  writeFileSync(join(outDir, 'config.json'), `${JSON.stringify(qwen2HfConfig(config, options), null, 2)}\n`);
  return { dir: outDir, embedTokens, decoder, quantized };
}
