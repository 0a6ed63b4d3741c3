// Random checkpoints at real shapes in the real Hugging Face layouts, for the real-scale benchmark and the GPU check
// (issue #18): an `InstructBlipForConditionalGeneration` folder (vision_model.*, qformer.*, query_tokens,
// qformer_tokenizer/) and a `Qwen2ForCausalLM` folder, written in BF16 one tensor at a time with no tfjs model, so
// EVA-ViT-g + Qwen2-7B (8.8 B parameters) is written in the memory of its largest tensor.
// Values: uniform with std 0.02 from a per-key xorshift stream (deterministic, ~10× faster than a normal draw);
// norm weights one, norm biases zero. Only speed and memory are measured on them, never answers.
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { qformerParameterShapes, writeSafetensorsStreamed } from '@bvllm/core';
import { qwen2ParameterShapes } from '@bvllm/llm-bridge';
import { vitParameterShapes } from '@bvllm/vision-encoder';

// The shipped default model's tokenizers (a file path, not a dependency: @bvllm/bvllm-tiny depends on this package).
const TINY = new URL('../../bvllm-tiny/models/bvllm-tiny/', import.meta.url).pathname;

/** BERT-base, as InstructBLIP's Q-Former (spec §1.0): 12 layers, 768 wide, cross-attention every 2nd layer. */
export const BERT_BASE_QFORMER = { hiddenSize: 768, numLayers: 12, numHeads: 12, intermediateSize: 3072, vocabSize: 30523, maxPositions: 512, crossAttentionFrequency: 2, layerNormEps: 1e-12, hiddenAct: 'gelu' };

function hashKey(key) {
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  return h >>> 0 || 1;
}

/** One tensor's values for `key` of `shape`. */
function randomValues(key, shape) {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  if (/(norm|LayerNorm|layernorm|layer_norm\d?)\.weight$/.test(key)) return out.fill(1);
  if (/(norm|LayerNorm|layernorm|layer_norm\d?)\.bias$/.test(key)) return out;
  const scale = (0.02 * Math.sqrt(3)) / 2147483648;
  let x = hashKey(key);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x | 0) * scale;
  }
  return out;
}

function writeRandom(path, shapes, onTensor) {
  const entries = [...shapes].map(([key, shape]) => ({ key, shape, dtype: 'BF16', read: () => randomValues(key, shape) }));
  writeSafetensorsStreamed(path, entries, { metadata: { format: 'pt', producer: 'bvllm-ts bench (random)' }, onTensor });
}

/**
 * An InstructBLIP folder with an EVA-class tower of `vit` (family instructblip; `imageSize` is the checkpoint's,
 * 224 for the released ones) and a BERT-base Q-Former with `numQueryTokens` queries.
 */
export function writeRandomInstructBlip(dir, vit, { numQueryTokens = 32, qformer = BERT_BASE_QFORMER, onTensor } = {}) {
  mkdirSync(dir, { recursive: true });
  const shapes = new Map([
    ...vitParameterShapes({ qkvBias: true, layerNormEps: 1e-6, hiddenAct: 'gelu', ...vit, family: 'instructblip' }, 'vision_model.'),
    ...qformerParameterShapes('qformer.', { ...qformer, encoderHiddenSize: vit.hiddenSize }),
    ['query_tokens', [1, numQueryTokens, qformer.hiddenSize]],
  ]);
  writeRandom(join(dir, 'model.safetensors'), shapes, onTensor);
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      architectures: ['InstructBlipForConditionalGeneration'],
      model_type: 'instructblip',
      num_query_tokens: numQueryTokens,
      vision_config: {
        hidden_size: vit.hiddenSize, intermediate_size: vit.intermediateSize, num_hidden_layers: vit.numLayers, num_attention_heads: vit.numHeads,
        image_size: vit.imageSize, patch_size: vit.patchSize, layer_norm_eps: 1e-6, hidden_act: 'gelu', qkv_bias: true,
      },
      qformer_config: {
        hidden_size: qformer.hiddenSize, num_hidden_layers: qformer.numLayers, num_attention_heads: qformer.numHeads, intermediate_size: qformer.intermediateSize,
        vocab_size: qformer.vocabSize, max_position_embeddings: qformer.maxPositions, encoder_hidden_size: vit.hiddenSize,
        cross_attention_frequency: qformer.crossAttentionFrequency, layer_norm_eps: qformer.layerNormEps, hidden_act: qformer.hiddenAct,
      },
    }, null, 2),
  );
  // The shipped model's WordPiece vocabulary: its ids are all below the Q-Former's 30 523 rows.
  const tokenizer = join(dir, 'qformer_tokenizer');
  if (!existsSync(tokenizer)) cpSync(join(TINY, 'question_tokenizer'), tokenizer, { recursive: true });
  return shapes;
}

/** A Qwen2ForCausalLM folder of `llm` (a pipeline `llm` config), with the shipped model's tokenizer files. */
export function writeRandomQwen2(dir, llm, { onTensor } = {}) {
  mkdirSync(dir, { recursive: true });
  const shapes = qwen2ParameterShapes(llm);
  writeRandom(join(dir, 'model.safetensors'), shapes, onTensor);
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2',
      vocab_size: llm.vocabSize, hidden_size: llm.hiddenSize, intermediate_size: llm.intermediateSize, num_hidden_layers: llm.numLayers,
      num_attention_heads: llm.numHeads, num_key_value_heads: llm.numKvHeads, rms_norm_eps: llm.rmsNormEps, rope_theta: llm.ropeTheta,
      max_position_embeddings: llm.maxPositionEmbeddings, tie_word_embeddings: llm.tieWordEmbeddings, hidden_act: 'silu', torch_dtype: 'bfloat16',
    }, null, 2),
  );
  for (const file of ['tokenizer.json', 'tokenizer_config.json']) cpSync(join(TINY, file), join(dir, file));
  return shapes;
}
