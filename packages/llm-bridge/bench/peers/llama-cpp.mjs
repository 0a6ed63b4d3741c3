// llama.cpp (node-llama-cpp 3.21.1, its prebuilt linux-x64 CPU binary from npm) as a peer: a GGUF file written from
// the bench's Qwen2 weights, and the timed run through a context sequence.
//
// The GGUF is what llama.cpp's convert_hf_to_gguf.py writes for `Qwen2ForCausalLM` (arch `qwen2`): the hparams under
// `qwen2.*`, a byte-level BPE vocabulary (`tokenizer.ggml.model` gpt2, pre-tokenizer qwen2) of exactly `vocab_size`
// tokens, and the tensors renamed (HF → llama.cpp, gguf-py tensor_mapping.py):
//   model.embed_tokens → token_embd, model.norm → output_norm, lm_head → output (absent when tied: llama.cpp then
//   reads token_embd), model.layers.N.{input_layernorm → attn_norm, self_attn.{q,k,v}_proj (+ bias) → attn_{q,k,v},
//   self_attn.o_proj → attn_output, post_attention_layernorm → ffn_norm, mlp.{gate,up,down}_proj → ffn_{gate,up,down}}
// No q/k permutation: llama.cpp runs qwen2 with NEOX-style rotary, HF's rotate_half. Matrices (embedding included)
// are in the file's type; norms and biases stay F32. Q4_0 is "pure": llama-quantize would store the tied
// embedding/head as Q6_K, a format this writer does not have.
import { byteLevelVocab } from './byte-level-vocab.mjs';
import { LLAMA_FTYPE, writeGguf } from './gguf-writer.mjs';
import { weightDims, weightValues } from '@bvllm/onnx';

export const GGUF_TYPES = ['F32', 'Q8_0', 'Q4_0'];

const LAYER_TENSORS = [
  ['input_layernorm.weight', 'attn_norm.weight'],
  ['self_attn.q_proj.weight', 'attn_q.weight'],
  ['self_attn.q_proj.bias', 'attn_q.bias'],
  ['self_attn.k_proj.weight', 'attn_k.weight'],
  ['self_attn.k_proj.bias', 'attn_k.bias'],
  ['self_attn.v_proj.weight', 'attn_v.weight'],
  ['self_attn.v_proj.bias', 'attn_v.bias'],
  ['self_attn.o_proj.weight', 'attn_output.weight'],
  ['post_attention_layernorm.weight', 'ffn_norm.weight'],
  ['mlp.gate_proj.weight', 'ffn_gate.weight'],
  ['mlp.up_proj.weight', 'ffn_up.weight'],
  ['mlp.down_proj.weight', 'ffn_down.weight'],
];

/**
 * Writes `path` in `type` (F32, Q8_0, Q4_0) from GraphWeights by HF key. Returns `{ path, bytes, tensorBytes }`;
 * every tensor but the embedding rows is read per token, and tied, the embedding is the head, so all of it is.
 */
export function writeQwen2Gguf(config, weights, path, type) {
  const vocab = byteLevelVocab(config.vocabSize);
  const hfTensors = [['model.embed_tokens.weight', 'token_embd.weight']];
  for (let i = 0; i < config.numLayers; i++) for (const [hf, gg] of LAYER_TENSORS) hfTensors.push([`model.layers.${i}.${hf}`, `blk.${i}.${gg}`]);
  hfTensors.push(['model.norm.weight', 'output_norm.weight']);
  if (!config.tieWordEmbeddings) hfTensors.push(['lm_head.weight', 'output.weight']);
  const tensors = hfTensors.map(([hf, name]) => {
    const w = weights.get(hf);
    const shape = [...weightDims(w)];
    return { name, shape, type: shape.length === 2 ? type : 'F32', load: () => weightValues(w).data };
  });
  const arch = 'qwen2';
  const special = new Set(vocab.specialIds);
  const metadata = [
    ['general.architecture', 'string', arch],
    ['general.name', 'string', 'bvllm-bench random Qwen2'],
    ['general.file_type', 'u32', LLAMA_FTYPE[type]],
    ['general.quantization_version', 'u32', 2],
    [`${arch}.context_length`, 'u32', config.maxPositionEmbeddings],
    [`${arch}.embedding_length`, 'u32', config.hiddenSize],
    [`${arch}.block_count`, 'u32', config.numLayers],
    [`${arch}.feed_forward_length`, 'u32', config.intermediateSize],
    [`${arch}.attention.head_count`, 'u32', config.numHeads],
    [`${arch}.attention.head_count_kv`, 'u32', config.numKvHeads],
    [`${arch}.rope.freq_base`, 'f32', config.ropeTheta],
    [`${arch}.attention.layer_norm_rms_epsilon`, 'f32', config.rmsNormEps],
    ['tokenizer.ggml.model', 'string', 'gpt2'],
    ['tokenizer.ggml.pre', 'string', 'qwen2'],
    ['tokenizer.ggml.tokens', 'string[]', vocab.tokens],
    // llama_token_type: 1 normal, 3 control.
    ['tokenizer.ggml.token_type', 'i32[]', vocab.tokens.map((_, id) => (special.has(id) ? 3 : 1))],
    ['tokenizer.ggml.merges', 'string[]', vocab.merges],
    ['tokenizer.ggml.eos_token_id', 'u32', vocab.eosId],
    ['tokenizer.ggml.padding_token_id', 'u32', vocab.padId],
    ['tokenizer.ggml.bos_token_id', 'u32', vocab.padId],
    ['tokenizer.ggml.add_bos_token', 'bool', false],
  ];
  return writeGguf(path, { metadata, tensors });
}

/**
 * In a child process: loads the GGUF on the CPU (no GPU, no build, no download) with `threads` threads and feeds the
 * prompt ids to a sequence, then greedy-decodes (temperature 0; EOS is yielded like any token). The first token
 * marks the end of prefill; the next `decodeSteps` are the decode steps. A short run first warms it up.
 */
export async function runLlamaCpp(path, { threads, promptIds, warmIds, decodeSteps }) {
  const { getLlama } = await import('node-llama-cpp');
  const start = performance.now();
  const llama = await getLlama({ build: 'never', gpu: false, usePrebuiltBinaries: true, skipDownload: true, progressLogs: false, logLevel: 'error', maxThreads: threads });
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const context = await model.createContext({ contextSize: Math.max(512, promptIds.length + decodeSteps + 64), batchSize: 512, threads, sequences: 1 });
  const sequence = context.getSequence();
  const loadSec = (performance.now() - start) / 1000;
  const greedy = async (ids, count) => {
    const marks = [performance.now()];
    const tokens = [];
    for await (const token of sequence.evaluate(ids, { temperature: 0, yieldEogToken: true })) {
      marks.push(performance.now());
      tokens.push(token);
      if (tokens.length === count) break;
    }
    await sequence.clearHistory();
    return { marks, tokens };
  };
  await greedy(warmIds, 2);
  const { marks, tokens } = await greedy(promptIds, 1 + decodeSteps);
  const info = { binary: llama.buildType, flashAttention: context.flashAttention, cpu: llama.systemInfo.trim() };
  await context.dispose();
  await model.dispose();
  return { loadSec, prefillSec: (marks[1] - marks[0]) / 1000, decodeSec: (marks[1 + decodeSteps] - marks[1]) / 1000, tokens: tokens.slice(1), info };
}
