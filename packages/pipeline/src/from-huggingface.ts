/**
 * Initialises a B-VLLM from Hugging Face checkpoints, as the official code initialises training (spec §1.0, D13,
 * D14): the EVA-ViT-g tower, both Q-Formers and both query sets from one InstructBLIP checkpoint
 * (`vision_model.post_layernorm` = LAVIS `ln_vision` becomes the temporal LayerNorm), the LLM from a Qwen2 folder;
 * the temporal projector and the two projector layers start random, as there. Train it with stages 1 and 2.
 */
import { join } from 'node:path';
import { QuestionTokenizer, TensorSource, applyKeyRules, tf } from '@bvllm/core';
import { instructBlipTemporalKeys } from '@bvllm/frame-select';
import { Qwen2Model, Qwen2Tokenizer } from '@bvllm/llm-bridge';
import { instructBlipSpatialKeys } from '@bvllm/spatial-sample';
import { VisionEncoder } from '@bvllm/vision-encoder';
import { BvllmModel } from './bvllm-model.js';
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
  const imageSize = (parsed.vision.vit as { imageSize?: number }).imageSize;
  const vision = VisionEncoder.load(sources.instructblip, { layout: 'instructblip', imageSize });
  let llm: Qwen2Model | undefined;
  let model: BvllmModel | undefined;
  try {
    llm = Qwen2Model.load(sources.qwen2);
    const assets = {
      tokenizer: Qwen2Tokenizer.fromDir(sources.tokenizer ?? sources.qwen2),
      questionTokenizer: QuestionTokenizer.fromDir(sources.questionTokenizer ?? join(sources.instructblip, 'qformer_tokenizer'), { maxLength: parsed.questionMaxLength }),
    };
    const described = { ...parsed, vision: { ...parsed.vision, vit: { ...vision.model.config } }, llm: { ...llm.config } };
    model = BvllmModel.create(described, assets, seed, { vision, llm });
    const source = TensorSource.fromDir(sources.instructblip);
    try {
      // Both Q-Formers start from the same InstructBLIP Q-Former (D14); selection uses the first K of its 32 queries.
      for (const rules of [instructBlipTemporalKeys, instructBlipSpatialKeys]) {
        const { tensors } = applyKeyRules(source.readAll((key) => /^(qformer\.|query_tokens$|vision_model\.post_layernorm\.)/.test(key)), rules);
        const mine = new Map([...tensors].filter(([key]) => model!.store.has(key)));
        for (const [key, t] of tensors) if (!mine.has(key)) t.dispose();
        model.store.load(mine, { allowMissing: (key) => !mine.has(key) });
        tf.dispose([...mine.values()]);
      }
    } finally {
      source.close();
    }
    return model;
  } catch (error) {
    if (model) model.dispose();
    else {
      vision.model.store.dispose();
      llm?.dispose();
    }
    throw error;
  }
}
