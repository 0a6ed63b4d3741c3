/**
 * Initialises a B-VLLM from Hugging Face checkpoints, as the official code initialises training (spec §1.0, D13,
 * D14): the EVA-ViT-g tower, both Q-Formers and both query sets from one InstructBLIP checkpoint
 * (`vision_model.post_layernorm` = LAVIS `ln_vision` becomes the temporal LayerNorm), the LLM from a Qwen2 folder;
 * the temporal projector and the two projector layers start random, as there. Train it with stages 1 and 2.
 *
 * Every weight is first planned from the file headers, as `bvllm convert` plans (convert/plan.ts): a folder that
 * lacks a module (a vision-only InstructBLIP folder has no Q-Former) fails with one ConversionError listing every
 * missing key, before any tfjs model is built.
 */
import { QuestionTokenizer, tf } from '@bvllm/core';
import { Qwen2Model, Qwen2Tokenizer } from '@bvllm/llm-bridge';
import { VisionEncoder } from '@bvllm/vision-encoder';
import { BvllmModel } from './bvllm-model.js';
import { VISION_PREFIX } from './convert/model-shapes.js';
import { planConversion } from './convert/plan.js';
import { parsePipelineConfig } from './pipeline-config.js';

export interface HuggingFaceSources {
  /** An `InstructBlipForConditionalGeneration` folder (config.json + safetensors, sharded or not). */
  instructblip: string;
  /** A `Qwen2ForCausalLM` folder (config.json + safetensors). */
  qwen2: string;
  /** The LLM tokenizer folder (tokenizer.json, tokenizer_config.json). Default: the Qwen2 folder. */
  tokenizer?: string;
  /** The Q-Formers' BERT tokenizer folder. Default: InstructBLIP's `qformer_tokenizer/`. */
  questionTokenizer?: string;
}

/** `config` is a pipeline config (e.g. `configs/bvllm-official.json`); the checkpoints fix the widths it names. */
export function modelFromHuggingFace(config: unknown, sources: HuggingFaceSources, seed = 0): BvllmModel {
  const parsed = parsePipelineConfig(config);
  // Throws ConversionError listing every missing, unexpected, mis-shaped and non-float key.
  const plan = planConversion(parsed, { ...sources, seed });
  let vision: VisionEncoder | undefined;
  let llm: Qwen2Model | undefined;
  let model: BvllmModel | undefined;
  try {
    const imageSize = (parsed.vision.vit as { imageSize?: number }).imageSize;
    vision = VisionEncoder.load(sources.instructblip, { layout: 'instructblip', imageSize });
    llm = Qwen2Model.load(sources.qwen2);
    const assets = {
      tokenizer: Qwen2Tokenizer.fromDir(plan.tokenizerDir),
      questionTokenizer: QuestionTokenizer.fromDir(plan.questionTokenizerDir, { maxLength: parsed.questionMaxLength }),
    };
    // The plan's config drops a LoRA no adapter fills; training attaches a fresh one, so the input's is kept.
    const described = { ...parsed, vision: { ...parsed.vision, vit: { ...vision.model.config } }, llm: { ...llm.config } };
    model = BvllmModel.create(described, assets, seed, { vision, llm });
    // Both Q-Formers start from the same InstructBLIP Q-Former (D14), read one tensor at a time; the weights the
    // plan leaves random keep the model's own init (PyTorch's nn.Linear init, as the official code).
    for (const w of plan.weights) {
      if (w.source !== 'instructblip' || w.key.startsWith(VISION_PREFIX)) continue;
      const t = tf.tensor(plan.source.read(w.key), w.shape, 'float32');
      try {
        model.store.load(new Map([[w.key, t]]), { allowMissing: () => true });
      } finally {
        t.dispose();
      }
    }
    return model;
  } catch (error) {
    if (model) model.dispose();
    else {
      vision?.model.store.dispose();
      llm?.dispose();
    }
    throw error;
  } finally {
    plan.close();
  }
}
