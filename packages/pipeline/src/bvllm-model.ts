/**
 * B-VLLM, the paper's figure in code (spec §1.1, §8):
 *
 *   video ─► vision tower ─► cls [T, Cv], patches [T, N, Cv]                  (frozen, @bvllm/vision-encoder)
 *   question ─► BERT ids ─┬► frame select ─► frameWeights [K, T], selected [K, N, Cv]   (@bvllm/frame-select)
 *                         │   token merge ─► merged [K', N, Cv]                       (@bvllm/token-merge)
 *                         └► spatial sample ─► spatialTokens [K', R, Cq]             (@bvllm/spatial-sample)
 *   projector ─► visualEmbeds [K'·R, D] ─► spliced at <video> in the chat prompt ─► Qwen2 ─► answer
 *
 * Every stage comes from its registry by `kind`, so an ablation is a config change. All parameters are gathered in
 * one ParameterStore under checkpoint keys (`vision_tower.*`, `vlm_att_*`, `model.*`, LoRA's PEFT keys), which is
 * what the trainer optimises and what a model folder stores.
 */
import { ParameterStore, Rng, tf, type FrameFeatures, type FrameSelection, type MergedFrames, type QuestionTokens, type QuestionTokenizer, type StageContext } from '@bvllm/core';
import { frameSelectRegistry, type FrameSelectStage } from '@bvllm/frame-select';
import {
  ChatTemplate,
  LoraAdapter,
  PROJECTOR_KEYS,
  Qwen2Model,
  causalLmLoss,
  isLoraKey,
  projectorRegistry,
  spliceVisual,
  type ChatMessage,
  type Projector,
  type Qwen2Tokenizer,
} from '@bvllm/llm-bridge';
import { spatialSampleRegistry, type SpatialSampleStage } from '@bvllm/spatial-sample';
import { tokenMergeRegistry, type TokenMergeStage } from '@bvllm/token-merge';
import { VisionEncoder } from '@bvllm/vision-encoder';
import { chatMessages } from './inference/chat-prompt.js';
import { parsePipelineConfig, withSlot, type PipelineConfig } from './pipeline-config.js';

/** The tokenizers a model folder carries beside its weights. */
export interface BvllmAssets {
  /** The LLM's byte-level BPE tokenizer (with its chat template). */
  tokenizer: Qwen2Tokenizer;
  /** The Q-Formers' BERT WordPiece tokenizer. */
  questionTokenizer: QuestionTokenizer;
}

/** Every intermediate of the visual path for one video, for training, logs and the frame strip. Caller disposes. */
export interface VisualPath {
  selection: FrameSelection;
  merged: MergedFrames;
  /** [K', R, Cq] */
  spatialTokens: tf.Tensor3D;
  /** [M, D], M = K'·R */
  visualEmbeds: tf.Tensor2D;
}

/** Frees every tensor a {@link VisualPath} holds. */
export function disposeVisualPath(path: VisualPath): void {
  tf.dispose([path.selection.frameWeights, path.selection.selected, path.merged.merged, path.spatialTokens, path.visualEmbeds]);
}

/** One training sample after preprocessing: cached frame features, the question, and the chat ids and labels. */
export interface BvllmSample {
  /** Absent for text-only samples. */
  features?: FrameFeatures;
  question: QuestionTokens;
  /** Ids with one placeholder (−201/−200) per visual sample. */
  inputIds: number[];
  /** −100 where the loss skips. */
  labels: number[];
}

/** Which keys each training stage updates (spec §2; D8 carries every `vlm_att_*` weight into stage 2). */
function trainableFilter(stage: 'stage1' | 'stage2', projectorKeys: readonly string[]): (key: string) => boolean {
  const isProjector = (key: string) => projectorKeys.some((p) => key.startsWith(`${p}.`));
  if (stage === 'stage1') return (key) => /^vlm_att_(query|encoder|ln|projector)_temporal/.test(key) || isProjector(key);
  return (key) => key.startsWith('vlm_att_') || isProjector(key) || isLoraKey(key);
}

export class BvllmModel {
  readonly store: ParameterStore;
  readonly template: ChatTemplate;
  private loraAdapter?: LoraAdapter;

  private constructor(
    readonly config: PipelineConfig,
    readonly assets: BvllmAssets,
    readonly vision: VisionEncoder,
    readonly frameSelect: FrameSelectStage,
    readonly tokenMerge: TokenMergeStage,
    readonly spatialSample: SpatialSampleStage,
    readonly projector: Projector,
    readonly llm: Qwen2Model,
    rng: Rng,
  ) {
    this.template = ChatTemplate.forTokenizer(assets.tokenizer);
    this.store = new ParameterStore('bvllm', rng.fork('store'));
    for (const [key, v] of vision.variables()) this.store.adopt(`vision_tower.${key}`, v);
    for (const stage of [frameSelect, tokenMerge, spatialSample, projector]) for (const [key, v] of stage.variables()) this.store.adopt(key, v);
    for (const [key, v] of llm.variables()) this.store.adopt(key, v);
    if (config.lora) this.attachLora(config.lora, rng.fork('lora'));
  }

  /**
   * A freshly initialised model (seeded) from a config and its tokenizers. `pretrained` supplies an already loaded
   * vision tower or LLM (a Hugging Face checkpoint); the config's `vision.vit` / `llm` then only document them.
   */
  static create(input: unknown, assets: BvllmAssets, seed = 0, pretrained: { vision?: VisionEncoder; llm?: Qwen2Model } = {}): BvllmModel {
    const config = parsePipelineConfig(input);
    const rng = Rng.fromSeed(seed);
    const vision = pretrained.vision ?? withSlot('vision', () => VisionEncoder.create(config.vision.vit as Parameters<typeof VisionEncoder.create>[0], rng.fork('vision')));
    const llm = pretrained.llm ?? withSlot('llm', () => Qwen2Model.create(config.llm as Parameters<typeof Qwen2Model.create>[0], rng.fork('llm')));
    const frameSelect = withSlot('frameSelect', () => frameSelectRegistry.create(config.frameSelect, { rng: rng.fork('frameSelect'), dims: { Cv: vision.hiddenSize } }));
    const tokenMerge = withSlot('tokenMerge', () => tokenMergeRegistry.create(config.tokenMerge, { rng: rng.fork('tokenMerge'), dims: {} }));
    const spatialSample = withSlot('spatialSample', () => spatialSampleRegistry.create(config.spatialSample, { rng: rng.fork('spatialSample'), dims: { Cv: vision.hiddenSize } }));
    const projector = withSlot('projector', () =>
      projectorRegistry.create(config.projector, {
        rng: rng.fork('projector'),
        dims: { Cq: spatialSample.outDim, Cv: vision.hiddenSize, D: llm.config.hiddenSize },
      }),
    );
    return new BvllmModel(config, assets, vision, frameSelect, tokenMerge, spatialSample, projector, llm, rng);
  }

  get lora(): LoraAdapter | undefined {
    return this.loraAdapter;
  }

  /** Adds LoRA adapters to the LLM (stage 2, spec §2) and their PEFT keys to the store. */
  attachLora(config: Record<string, unknown>, rng: Rng): LoraAdapter {
    if (this.loraAdapter) throw new Error('LoRA is already attached');
    this.loraAdapter = withSlot('lora', () => LoraAdapter.attach(this.llm, config, rng));
    for (const [key, v] of this.loraAdapter.variables()) this.store.adopt(key, v);
    // Recorded in the config so a saved model re-attaches the same adapters before its weights load.
    (this.config as { lora?: Record<string, unknown> }).lora = { ...this.loraAdapter.config };
    return this.loraAdapter;
  }

  /** Keys the trainer updates in a stage (spec §2); the vision tower and the LLM base stay frozen. */
  trainable(stage: 'stage1' | 'stage2'): (key: string) => boolean {
    return trainableFilter(stage, PROJECTOR_KEYS[this.projector.kind]);
  }

  /** The question as the Q-Formers read it: BERT ids, left-truncated (spec §1.1 "text"). */
  tokenizeQuestion(question: string): QuestionTokens {
    return this.assets.questionTokenizer.encode(question);
  }

  /**
   * Frame selection → temporal merge → spatial sampling → projector, for one video (spec §1.1 (a)–(e)), on tfjs:
   * the training path (differentiable). Inference runs `InferenceSession.visualPath`, which equals it.
   */
  visualPath(features: FrameFeatures, question: QuestionTokens, context: StageContext, options: { gumbelNoise?: tf.Tensor2D } = {}): VisualPath {
    const selection = this.frameSelect.apply({ features, question, gumbelNoise: options.gumbelNoise }, context);
    const owned: tf.Tensor[] = [selection.frameWeights, selection.selected];
    try {
      const merged = this.tokenMerge.apply(selection, context);
      owned.push(merged.merged);
      const { spatialTokens } = this.spatialSample.apply({ merged, question }, context);
      owned.push(spatialTokens);
      const visualEmbeds = this.projector.apply({ spatialTokens }, context);
      return { selection, merged, spatialTokens, visualEmbeds };
    } catch (error) {
      tf.dispose(owned);
      throw error;
    }
  }

  /** Mean next-token cross-entropy over the batch's supervised tokens (spec §2). Differentiable. */
  loss(batch: readonly BvllmSample[], context: StageContext): tf.Scalar {
    return tf.tidy(() => {
      const visual = batch.map((sample) => {
        if (!sample.features) return [];
        const path = this.visualPath(sample.features, sample.question, context);
        return [path.visualEmbeds];
      });
      const spliced = spliceVisual(this.llm, { inputIds: batch.map((s) => s.inputIds), labels: batch.map((s) => s.labels), visual });
      const { logits } = this.llm.forward({ inputsEmbeds: spliced.inputsEmbeds, attentionMask: spliced.attentionMask, logitsFor: 'all' });
      return causalLmLoss(logits, spliced.labels);
    });
  }

  /** The chat messages of a conversation about a video: `<video>\n` opens the first user turn (spec §1.2). */
  messagesFor(turns: readonly { role: 'user' | 'assistant'; content: string }[]): ChatMessage[] {
    return chatMessages(this.config.systemPrompt, turns);
  }

  dispose(): void {
    this.loraAdapter?.detach();
    this.vision.model.store.dispose();
    for (const stage of [this.frameSelect, this.tokenMerge, this.spatialSample, this.projector]) stage.dispose();
    this.llm.dispose();
  }
}
