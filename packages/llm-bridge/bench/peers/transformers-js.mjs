// transformers.js (@huggingface/transformers) as a peer: a model folder in its own layout, written from the bench's
// Qwen2 weights with @bvllm/onnx, and the timed run that loads it through AutoModelForCausalLM.
//
// The folder is what transformers.js reads for a decoder-only model (models/session.js, utils/model-loader.js,
// configs.js in its source): config.json (`model_type: qwen2`; the past shapes come from `num_key_value_heads`,
// `num_hidden_layers`, `head_dim`), generation_config.json, tokenizer.json + tokenizer_config.json, and one graph per
// dtype under onnx/, named by its suffix (utils/dtypes.js): fp32 `model.onnx` (+ `model.onnx_data`, declared in
// `transformers.js_config.use_external_data_format`), q8 `model_quantized.onnx`, q4 `model_q4.onnx`.
// Graph interface, as optimum exports Qwen2 for it: `input_ids`, `attention_mask` int64 [B, P + L], `position_ids`,
// `past_key_values.{i}.key|value` [B, Hkv, P, d] → `logits` [B, L, V] at every position, `present.{i}.key|value`.
// Like that export, q, k, v and gate, up are separate MatMuls, and the tied head is its own transposed initializer.
// Its quantisations are those of transformers.js' scripts/quantize.py:
//   q8  onnxruntime's quantize_dynamic (IntegerOps, QInt8 weights, per tensor, not per channel): every MatMul on a
//       constant weight → DynamicQuantizeLinear + MatMulInteger + Cast + Mul by the two scales; the embedding
//       Gather reads int8 codes and DequantizeLinear follows (GatherQuant).
//   q4  MatMul4BitsQuantizer (block 32, symmetric, accuracy level unset = 0): MatMulNBits; the embedding stays fp32.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import {
  GraphBuilder,
  applyRotary,
  causalPaddingBias,
  decodeModel,
  groupedQueryAttention,
  initializerValues,
  lazyWeight,
  linear,
  onnx,
  quantizeMatMuls,
  rmsNorm,
  rotaryTables,
  silu,
  splitHeads,
  weightDims,
  weightInitializer,
  weightValues,
  writeModel,
} from '@bvllm/onnx';
import { bpeModelJson } from '../../dist/index.js';
import { byteLevelVocab } from './byte-level-vocab.mjs';

export const TJS_FILES = { fp32: 'model.onnx', q8: 'model_quantized.onnx', q4: 'model_q4.onnx' };
const BATCH = 'batch_size';
const SEQUENCE = 'sequence_length';
const PAST = 'past_sequence_length';
const TOTAL = 'total_sequence_length';

/** Per-tensor symmetric int8 (onnxruntime's QInt8 weights: scale absmax / 127, zero point 0). */
function int8PerTensor(values) {
  let amax = 0;
  for (let i = 0; i < values.length; i++) amax = Math.max(amax, Math.abs(values[i]));
  const scale = amax / 127 || 1;
  const codes = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) codes[i] = Math.max(-127, Math.min(127, Math.round(values[i] / scale)));
  return { codes, scale };
}

/**
 * quantize_dynamic's MatMulInteger rewrite of every MatMul whose weight is a 2-D float32 initializer. One
 * DynamicQuantizeLinear per activation (q, k, v share theirs, as gate and up do), kept in `shared` across calls.
 */
function quantizeDynamicPerTensor(g, shared) {
  const replaced = new Set();
  const node = (opType, inputs, outputs) => ({ name: g.fresh(opType), opType, inputs, outputs, attributes: {}, domain: '' });
  const value = (prefix) => {
    const name = g.fresh(prefix);
    g.claimValue(name);
    return name;
  };
  g.rewriteNodes((n) => {
    const w = n.opType === 'MatMul' && n.domain === '' ? g.initializers.get(n.inputs[1]) : undefined;
    if (!w || w.dtype !== 'float32' || w.dims.length !== 2) return undefined;
    const { codes, scale } = int8PerTensor(initializerValues(w));
    const wq = g.initializer(g.fresh(`${w.name}_quantized`), codes, w.dims);
    const ws = g.initializer(g.fresh(`${w.name}_scale`), Float32Array.of(scale), []);
    const wzp = g.constant(Int8Array.of(0), []);
    replaced.add(w.name);
    const out = [];
    let a = shared.get(n.inputs[0]);
    if (!a) {
      a = [value('a_quantized'), value('a_scale'), value('a_zero_point')];
      out.push(node('DynamicQuantizeLinear', [n.inputs[0]], a));
      shared.set(n.inputs[0], a);
    }
    const product = value('matmul_integer');
    const cast = value('matmul_integer_float');
    const scales = value('matmul_scale');
    out.push(node('MatMulInteger', [a[0], wq, a[2], wzp], [product]));
    out.push({ ...node('Cast', [product], [cast]), attributes: { to: 1 } });
    out.push(node('Mul', [a[1], ws], [scales]));
    out.push(node('Mul', [cast, scales], n.outputs));
    return out;
  });
  for (const name of replaced) g.removeInitializer(name);
}

/** The transformers.js graph of one dtype. `weights` are GraphWeights by HF key (lazy for fp32: it is streamed). */
export function buildTransformersJsGraph(config, weights, dtype) {
  const { hiddenSize: D, numHeads, numKvHeads, intermediateSize, numLayers, vocabSize, rmsNormEps, ropeTheta } = config;
  const d = config.headDim ?? D / numHeads;
  const g = new GraphBuilder('qwen2_transformers_js');
  const shared = new Map();
  const quantizeNew = () => {
    if (dtype === 'q8') quantizeDynamicPerTensor(g, shared);
    if (dtype === 'q4') quantizeMatMuls(g, { bits: 4, blockSize: 32, symmetric: true, accuracyLevel: 0 });
  };
  const ids = g.input('input_ids', 'int64', [BATCH, SEQUENCE]);
  const mask = g.input('attention_mask', 'int64', [BATCH, TOTAL]);
  const positions = g.input('position_ids', 'int64', [BATCH, SEQUENCE]);
  const table = weights.get('model.embed_tokens.weight');
  let x;
  if (dtype === 'q8') {
    const { codes, scale } = int8PerTensor(weightValues(table).data);
    const gathered = g.op.gather(g.initializer('model.embed_tokens.weight_quantized', codes, weightDims(table)), ids, 0);
    x = g.node1('DequantizeLinear', [gathered, g.initializer('model.embed_tokens.weight_scale', Float32Array.of(scale), []), g.constant(Int8Array.of(0), [])]);
  } else x = g.op.gather(weightInitializer(g, 'model.embed_tokens.weight', table), ids, 0);
  const rope = rotaryTables(g, positions, d, ropeTheta);
  const bias = causalPaddingBias(g, mask, x);
  for (let i = 0; i < numLayers; i++) {
    const p = `model.layers.${i}`;
    const w = (key) => weights.get(`${p}.${key}`);
    const h = rmsNorm(g, x, `${p}.input_layernorm`, w('input_layernorm.weight'), rmsNormEps);
    const proj = (name, bias) => linear(g, h, `${p}.self_attn.${name}`, w(`self_attn.${name}.weight`), bias ? w(`self_attn.${name}.bias`) : undefined);
    const q = applyRotary(g, splitHeads(g, proj('q_proj', true), numHeads, d), rope.cos, rope.sin, d);
    const k = applyRotary(g, splitHeads(g, proj('k_proj', true), numKvHeads, d), rope.cos, rope.sin, d);
    const v = splitHeads(g, proj('v_proj', true), numKvHeads, d);
    const pastKey = g.input(`past_key_values.${i}.key`, 'float32', [BATCH, numKvHeads, PAST, d]);
    const pastValue = g.input(`past_key_values.${i}.value`, 'float32', [BATCH, numKvHeads, PAST, d]);
    const [keys] = g.node('Concat', [pastKey, k], [`present.${i}.key`], { axis: 2 });
    const [values] = g.node('Concat', [pastValue, v], [`present.${i}.value`], { axis: 2 });
    const attended = groupedQueryAttention(g, { q, k: keys, v: values, bias, numHeads, numKvHeads, headDim: d });
    const afterAttention = g.op.add(x, linear(g, attended, `${p}.self_attn.o_proj`, w('self_attn.o_proj.weight')));
    const m = rmsNorm(g, afterAttention, `${p}.post_attention_layernorm`, w('post_attention_layernorm.weight'), rmsNormEps);
    const gate = linear(g, m, `${p}.mlp.gate_proj`, w('mlp.gate_proj.weight'));
    const up = linear(g, m, `${p}.mlp.up_proj`, w('mlp.up_proj.weight'));
    x = g.op.add(afterAttention, linear(g, g.op.mul(silu(g, gate), up), `${p}.mlp.down_proj`, w('mlp.down_proj.weight')));
    quantizeNew();
  }
  const normed = rmsNorm(g, x, 'model.norm', weights.get('model.norm.weight'), rmsNormEps);
  const head = config.tieWordEmbeddings ? table : weights.get('lm_head.weight');
  g.output('logits', 'float32', [BATCH, SEQUENCE, vocabSize], linear(g, normed, 'lm_head', head));
  quantizeNew();
  for (let i = 0; i < numLayers; i++) {
    g.output(`present.${i}.key`, 'float32', [BATCH, numKvHeads, TOTAL, d]);
    g.output(`present.${i}.value`, 'float32', [BATCH, numKvHeads, TOTAL, d]);
  }
  return g;
}

/** External data under transformers.js' name, `<file>_data` (writeModel names it `<file>.data`). */
function renameExternalData(path, dataPath) {
  const model = decodeModel(readFileSync(path));
  const location = `${basename(path)}_data`;
  for (const t of model.graph.initializer) for (const e of t.externalData ?? []) if (e.key === 'location') e.value = location;
  writeFileSync(path, onnx.ModelProto.encode(model).finish());
  renameSync(dataPath, join(dirname(path), location));
}

/** GraphWeights whose values are read only when the graph is written. */
function lazyWeights(weights) {
  return {
    has: (key) => weights.has(key),
    get: (key) => {
      const w = weights.get(key);
      return lazyWeight(weightDims(w), () => weightValues(w).data);
    },
  };
}

/**
 * Writes the folder for `dtypes` (fp32, q8, q4). Returns, per dtype, `{ file, bytes, embedBytes }`: the graph's
 * bytes and those of its embedding table (read one row per token; the rest is read in full every decode step).
 */
export function writeTransformersJsModel(config, weights, dir, dtypes) {
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  const vocab = byteLevelVocab(config.vocabSize);
  const d = config.headDim ?? config.hiddenSize / config.numHeads;
  const written = {};
  const externalData = {};
  for (const dtype of dtypes) {
    const path = join(dir, 'onnx', TJS_FILES[dtype]);
    // fp32 streams its weights to external data; q8 and q4 are quantised layer by layer and written as one file,
    // as transformers.js' own exports of models under 2 GB are.
    const g = buildTransformersJsGraph(config, dtype === 'fp32' ? lazyWeights(weights) : weights, dtype);
    const out = writeModel(g, path);
    if (out.dataPath) {
      renameExternalData(path, out.dataPath);
      externalData[TJS_FILES[dtype]] = true;
    }
    written[dtype] = { file: path, bytes: out.bytes, embedBytes: config.vocabSize * config.hiddenSize * (dtype === 'q8' ? 1 : 4) };
  }
  const json = (file, value) => writeFileSync(join(dir, file), `${JSON.stringify(value, null, 2)}\n`);
  json('config.json', {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    head_dim: d,
    hidden_act: 'silu',
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    max_position_embeddings: config.maxPositionEmbeddings,
    tie_word_embeddings: config.tieWordEmbeddings,
    bos_token_id: vocab.padId,
    eos_token_id: vocab.eosId,
    use_cache: true,
    torch_dtype: 'float32',
    'transformers.js_config': { use_external_data_format: externalData },
  });
  json('generation_config.json', { bos_token_id: vocab.padId, eos_token_id: vocab.eosId, pad_token_id: vocab.padId, do_sample: false });
  const special = new Set(vocab.specialIds);
  json('tokenizer.json', {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: vocab.specialIds.map((id) => ({ id, content: vocab.tokens[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true },
    model: bpeModelJson(Object.fromEntries(vocab.tokens.flatMap((t, id) => (special.has(id) ? [] : [[t, id]]))), vocab.merges),
  });
  json('tokenizer_config.json', {
    tokenizer_class: 'Qwen2Tokenizer',
    bos_token: null,
    eos_token: vocab.tokens[vocab.eosId],
    pad_token: vocab.tokens[vocab.padId],
    add_prefix_space: false,
    clean_up_tokenization_spaces: false,
    model_max_length: config.maxPositionEmbeddings,
  });
  return written;
}

/**
 * In a child process: loads the folder with `dtype` through AutoModelForCausalLM (local files only, no remote
 * models) and greedy-generates `1 + decodeSteps` tokens after the prompt with `generate`, timing the first token
 * (prefill) and the rest (decode) with a streamer. A short generation first warms the session up.
 */
export async function runTransformersJs(dir, dtype, { threads, promptIds, warmIds, decodeSteps }) {
  const { env, AutoModelForCausalLM, AutoTokenizer, BaseStreamer, Tensor } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = `${dirname(dir)}/`;
  const name = basename(dir);
  const start = performance.now();
  // Not used for timing (ids are passed directly): checks that the folder's tokenizer files load.
  await AutoTokenizer.from_pretrained(name, { local_files_only: true });
  const model = await AutoModelForCausalLM.from_pretrained(name, {
    local_files_only: true,
    dtype,
    device: 'cpu',
    session_options: { intraOpNumThreads: threads, interOpNumThreads: 1 },
  });
  const loadSec = (performance.now() - start) / 1000;
  class Clock extends BaseStreamer {
    marks = [];
    put() {
      this.marks.push(performance.now());
    }
    end() {}
  }
  const generate = async (ids, newTokens) => {
    const streamer = new Clock();
    const input_ids = new Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]);
    const attention_mask = new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]);
    // min_new_tokens keeps an EOS from ending the timed run early (random weights).
    const out = await model.generate({ input_ids, attention_mask, max_new_tokens: newTokens, min_new_tokens: newTokens, do_sample: false, streamer });
    const all = Array.from(out.data, Number).slice(ids.length);
    return { marks: streamer.marks, tokens: all };
  };
  await generate(warmIds, 2);
  const { marks, tokens } = await generate(promptIds, 1 + decodeSteps);
  // marks[0]: the prompt is put before any forward; marks[1]: after prefill and its token; then one per step.
  return { loadSec, prefillSec: (marks[1] - marks[0]) / 1000, decodeSec: (marks[1 + decodeSteps] - marks[1]) / 1000, tokens: tokens.slice(1) };
}
