/**
 * Planning a conversion (issue #18): for every weight of the target model folder, which source holds it and under
 * which key, read from file headers only. Sources, in priority order:
 *   - a B-VLLM model folder (`--bvllm`), keys as they are;
 *   - an `InstructBlipForConditionalGeneration` folder, as the official code initialises training (spec §1.0,
 *     D13, D14): `vision_model.*` is the tower, `qformer.*` + `query_tokens` both Q-Formers and query sets,
 *     `vision_model.post_layernorm` (= LAVIS `ln_vision`) the temporal LayerNorm;
 *   - a `Qwen2ForCausalLM` folder (with a PEFT LoRA adapter merged into it at read time, `--lora`);
 *   - seeded random fills for what the official init starts random (the temporal projector, both projector
 *     layers) and for what `--allow-random` names.
 * Validation lists every missing, unexpected, mis-shaped and non-float key at once (ConversionError).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  CheckpointFormatError,
  ConfigError,
  InvalidArgumentError,
  TensorSource,
  isFloatDtype,
  mapKey,
  randomSource,
  readHfConfig,
  type KeyRule,
  type RandomEntry,
  type WeightInfo,
  type WeightSource,
} from '@bvllm/core';
import { instructBlipTemporalKeys } from '@bvllm/frame-select';
import { PROJECTOR_KEYS, isLoraKey, loraMergedSource, qwen2ConfigFromHf, qwen2KeyRules } from '@bvllm/llm-bridge';
import { instructBlipSpatialKeys } from '@bvllm/spatial-sample';
import { familyOf, interpolatePositions, keyTables, vitConfigFromHf, type VitLayout } from '@bvllm/vision-encoder';
import { CONFIG_FILE, QUESTION_TOKENIZER_DIR, WEIGHTS_FILE } from '../model-dir.js';
import { parsePipelineConfig, type PipelineConfig } from '../pipeline-config.js';
import { ConversionError, type MisshapedWeight, type MissingWeight, type SourceName, type UnexpectedWeight, type WrongDtypeWeight } from './conversion-error.js';
import { VISION_PREFIX, modelParameterShapes, moduleConfigs } from './model-shapes.js';

export interface ConversionSources {
  /** An `InstructBlipForConditionalGeneration` folder (or a bare `InstructBlipVisionModel` for the tower only). */
  instructblip?: string;
  /**
   * A vision tower folder (`CLIPVisionModel`, `SiglipVisionModel`, `InstructBlipVisionModel` or a whole model of
   * those families) for `vision_tower.*` and, as D13 takes `ln_vision` from the tower, `vlm_att_ln_temporal`.
   * InstructBLIP's own tower is then not used. Default: the tower inside `instructblip`.
   */
  vision?: string;
  /** A `Qwen2ForCausalLM` folder (config.json + safetensors, sharded or not). */
  qwen2?: string;
  /** A B-VLLM model folder whose weights take precedence over the Hugging Face ones. */
  bvllm?: string;
  /** A PEFT LoRA adapter folder, merged into the Qwen2 weights (`W + (α/r)·B·A`); the folder then has no LoRA. */
  lora?: string;
  /** Weights (exact keys, or key prefixes) that may start random when no source holds them. */
  allowRandom?: readonly string[];
  /** Seed of the random fills (each key draws from its own generator). Default 0. */
  seed?: number;
  /** The LLM tokenizer folder. Default: the Qwen2 folder, else the B-VLLM folder. */
  tokenizer?: string;
  /** The Q-Formers' BERT tokenizer folder. Default: InstructBLIP's `qformer_tokenizer/`, else the B-VLLM folder's. */
  questionTokenizer?: string;
}

/** Why a weight starts random: the official init does so (D14), or `--allow-random` allowed it. */
export type RandomReason = 'official-init' | 'allowed';

export interface PlannedWeight {
  /** The model-folder key. */
  key: string;
  shape: number[];
  source: SourceName;
  /** The key read from the source (absent for random fills). */
  sourceKey?: string;
  /** The source's stored dtype (F32 for random fills). */
  sourceDtype: WeightInfo['dtype'];
  random?: RandomReason;
  /** A change made on the way, e.g. the position table resized to the config's image size. */
  note?: string;
}

/** A source key the model does not take: known-unused (InstructBLIP's LLM) or unused by this config's kinds. */
export interface SkippedKey {
  source: SourceName;
  key: string;
  reason: string;
}

export interface ConversionPlan {
  /** The pipeline config of the folder: checkpoint-fixed widths filled in, `lora` dropped when merged or absent. */
  config: PipelineConfig;
  /** One entry per model-folder weight, in the order `BvllmModel` gathers them. */
  weights: PlannedWeight[];
  skipped: SkippedKey[];
  /** The source folder of each source used. */
  dirs: Partial<Record<SourceName | 'lora', string>>;
  tokenizerDir: string;
  questionTokenizerDir: string;
  /** Reads planned weights by model-folder key, one at a time (source keys, transforms and LoRA merge applied). */
  source: WeightSource;
  close(): void;
}

/** The weights the official init leaves random (D14; `from-huggingface.ts`): the temporal projector, the projector. */
function officialRandom(config: PipelineConfig): (key: string) => boolean {
  const projector = PROJECTOR_KEYS[moduleConfigs(config).projector.kind];
  return (key) => key.startsWith('vlm_att_projector_temporal.') || projector.some((p) => key.startsWith(`${p}.`));
}

/** Biases start at zero, norm scales at one, everything else N(0, 0.02) (HF `_init_weights`). */
function randomInit(key: string, shape: readonly number[]): Pick<RandomEntry, 'init' | 'std'> {
  if (key.endsWith('.bias') || key.endsWith('_bias')) return { init: 'zeros' };
  if (shape.length === 1 && /(norm|LayerNorm|layernorm|ln_[a-z]+|layer_norm\d?)\.weight$/.test(key)) return { init: 'ones' };
  return { init: 'normal', std: 0.02 };
}

/** How a source's keys become model-folder keys. `strict`: any key it renames but the model lacks is unexpected. */
interface Consumer {
  source: SourceName;
  rules: readonly KeyRule[];
  prefix: string;
  strict: boolean;
}

const moduleOf = (key: string) => key.split('.')[0];

/** InstructBLIP keys no module of a B-VLLM reads (its LLM and the projection into it). */
const INSTRUCTBLIP_UNUSED = /^(language_model|language_projection)\./;

export function planConversion(configInput: unknown, sources: ConversionSources): ConversionPlan {
  const parsed = parsePipelineConfig(configInput);
  if (!sources.instructblip && !sources.vision && !sources.qwen2 && !sources.bvllm) throw new InvalidArgumentError('sources', 'give at least one of instructblip, vision, qwen2, bvllm');
  const opened: WeightSource[] = [];
  try {
    const folders: Partial<Record<SourceName, WeightSource>> = {};
    const open = (name: SourceName, dir: string, wrap?: (s: WeightSource) => WeightSource) => {
      const s = TensorSource.fromDir(dir, name === 'bvllm' ? WEIGHTS_FILE : 'model.safetensors');
      opened.push(s);
      folders[name] = wrap ? wrap(s) : s;
    };
    // The checkpoints fix the widths the config only documents (as modelFromHuggingFace does).
    const config: PipelineConfig = structuredClone(parsed);
    const imageSize = (parsed.vision.vit as { imageSize?: number }).imageSize;
    if (sources.instructblip) {
      const raw = readHfConfig(sources.instructblip);
      const family = familyOf(raw) ?? 'instructblip';
      if (family !== 'instructblip') throw new ConfigError(`${sources.instructblip}: config.json is a ${family} model, not InstructBLIP`, ['instructblip']);
      if (!sources.vision) config.vision.vit = { ...vitConfigFromHf(raw, 'instructblip', { imageSize }) };
      open('instructblip', sources.instructblip);
    }
    let visionLayout: VitLayout = 'instructblip';
    if (sources.vision) {
      const raw = readHfConfig(sources.vision);
      const family = familyOf(raw);
      // LAVIS's EVA export needs its q/v biases fused (a tensor transform); load it with VisionEncoder.load instead.
      if (!family) throw new ConfigError(`${sources.vision}: config.json names no vision family this converter reads (instructblip, clip, siglip)`, ['vision']);
      visionLayout = family;
      config.vision.vit = { ...vitConfigFromHf(raw, family, { imageSize }) };
      open('vision', sources.vision);
    }
    if (sources.qwen2) {
      config.llm = { ...qwen2ConfigFromHf(readHfConfig(sources.qwen2)) };
      open('qwen2', sources.qwen2, sources.lora ? (s) => loraMergedSource(s, sources.lora!) : undefined);
    } else if (sources.lora) throw new InvalidArgumentError('lora', 'a LoRA adapter is merged into the Qwen2 weights; give the Qwen2 folder too');
    if (sources.bvllm) {
      if (!existsSync(join(sources.bvllm, CONFIG_FILE))) throw new CheckpointFormatError(sources.bvllm, `not a B-VLLM model folder (no ${CONFIG_FILE})`);
      open('bvllm', sources.bvllm);
    }
    // LoRA: merged at conversion, or kept as PEFT keys when the B-VLLM folder has them; a fresh adapter (B = 0)
    // changes nothing, so a config asking for one without any adapter weights gets none.
    const skipped: SkippedKey[] = [];
    const bvllmHasLora = folders.bvllm?.keys().some(isLoraKey) ?? false;
    if (config.lora && (sources.lora || !bvllmHasLora)) delete config.lora;

    const targets = modelParameterShapes(config);
    const targetModules = new Set([...targets.keys()].map(moduleOf));
    const consumers: Consumer[] = [
      { source: 'bvllm', rules: [], prefix: '', strict: true },
      { source: 'vision', rules: keyTables[visionLayout], prefix: VISION_PREFIX, strict: false },
      // D13: the temporal LayerNorm starts as the tower's post-LayerNorm (LAVIS `ln_vision`).
      { source: 'vision', rules: [{ match: /^(vision_model\.)?post_layernorm\.(weight|bias)$/, rename: 'vlm_att_ln_temporal.$2' }], prefix: '', strict: false },
      ...(sources.vision
        ? []
        : [{ source: 'instructblip' as const, rules: keyTables.instructblip, prefix: VISION_PREFIX, strict: false }]),
      // With a tower of its own (`vision`), InstructBLIP's tower and post-LayerNorm are not read.
      ...[instructBlipTemporalKeys, instructBlipSpatialKeys].map((table) => ({
        source: 'instructblip' as const,
        rules: sources.vision ? [{ match: /^vision_model\./, drop: true }, ...table] : table,
        prefix: '',
        strict: false,
      })),
      { source: 'qwen2', rules: qwen2KeyRules(moduleConfigs(config).llm.tieWordEmbeddings), prefix: '', strict: true },
    ];

    // Where each target is found: the first consumer (priority order) whose source maps a key onto it.
    const found = new Map<string, { source: SourceName; sourceKey: string }>();
    const unexpected: UnexpectedWeight[] = [];
    for (const name of ['bvllm', 'vision', 'instructblip', 'qwen2'] as const) {
      const folder = folders[name];
      if (!folder) continue;
      const mine = consumers.filter((c) => c.source === name);
      for (const key of folder.keys()) {
        const results = mine.map((c) => {
          const mapped = mapKey(key, c.rules);
          return mapped && `${c.prefix}${mapped.key}`;
        });
        const hits = results.filter((t): t is string => t !== undefined && targets.has(t));
        for (const t of hits) if (!found.has(t)) found.set(t, { source: name, sourceKey: key });
        if (hits.length) continue;
        const kept = results.filter((t): t is string => t !== undefined);
        const strict = mine.some((c) => c.strict);
        const claimed = kept.find((t) => strict || targetModules.has(moduleOf(t)));
        if (claimed !== undefined) unexpected.push({ source: name, key, mapsTo: claimed });
        else if (kept.length) skipped.push({ source: name, key, reason: `not used by this config (would be ${kept[0]})` });
        else skipped.push({ source: name, key, reason: skipReason(name, key, !!sources.vision) });
      }
    }

    const isOfficialRandom = officialRandom(config);
    const allow = sources.allowRandom ?? [];
    const allowed = (key: string) => allow.some((n) => key === n || key.startsWith(n.endsWith('.') ? n : `${n}.`));
    const unused = allow.filter((n) => ![...targets.keys()].some((k) => k === n || k.startsWith(n.endsWith('.') ? n : `${n}.`)));
    if (unused.length) throw new InvalidArgumentError('allowRandom', `${unused.join(', ')} name(s) no weight of this config`);

    const weights: PlannedWeight[] = [];
    const missing: MissingWeight[] = [];
    const misshaped: MisshapedWeight[] = [];
    const wrongDtype: WrongDtypeWeight[] = [];
    const randomEntries: RandomEntry[] = [];
    const transforms = new Map<string, (values: Float32Array) => Float32Array>();
    for (const [key, shape] of targets) {
      const hit = found.get(key);
      if (!hit) {
        const reason: RandomReason | undefined = isOfficialRandom(key) ? 'official-init' : allowed(key) ? 'allowed' : undefined;
        if (!reason) missing.push({ key, shape });
        else {
          weights.push({ key, shape, source: 'random', sourceDtype: 'F32', random: reason });
          randomEntries.push({ key, shape, ...randomInit(key, shape) });
        }
        continue;
      }
      const info = folders[hit.source]!.info(hit.sourceKey);
      if (!isFloatDtype(info.dtype)) wrongDtype.push({ key, source: hit.source, sourceKey: hit.sourceKey, dtype: info.dtype });
      const entry: PlannedWeight = { key, shape, source: hit.source, sourceKey: hit.sourceKey, sourceDtype: info.dtype };
      if (!sameShape(info.shape, shape)) {
        const resize = positionResize(key, info.shape, shape, config);
        if (resize) {
          transforms.set(key, resize.apply);
          entry.note = resize.note;
        } else misshaped.push({ key, source: hit.source, sourceKey: hit.sourceKey, expected: shape, actual: info.shape });
      }
      weights.push(entry);
    }
    if (missing.length || unexpected.length || misshaped.length || wrongDtype.length) throw new ConversionError(missing, unexpected, misshaped, wrongDtype);

    const random = randomSource(randomEntries, sources.seed ?? 0);
    opened.push(random);
    const byKey = new Map(weights.map((w) => [w.key, w]));
    const planned = (key: string): PlannedWeight => {
      const w = byKey.get(key);
      if (!w) throw new InvalidArgumentError('key', `"${key}" is not a weight of this plan`);
      return w;
    };
    const source: WeightSource = {
      keys: () => weights.map((w) => w.key),
      has: (key) => byKey.has(key),
      info: (key) => ({ dtype: planned(key).sourceDtype, shape: [...planned(key).shape] }),
      read: (key) => {
        const w = planned(key);
        if (w.source === 'random') return random.read(key);
        const values = folders[w.source]!.read(w.sourceKey!);
        const transform = transforms.get(key);
        return transform ? transform(values) : values;
      },
      origin: (key) => {
        const w = planned(key);
        if (w.source === 'random') return random.origin(key);
        return `${folders[w.source]!.origin(w.sourceKey!)}${w.sourceKey === key ? '' : ` (as ${w.sourceKey})`}${w.note ? `, ${w.note}` : ''}`;
      },
      close: () => {
        for (const s of opened) s.close();
      },
    };
    return {
      config,
      weights,
      skipped,
      dirs: { instructblip: sources.instructblip, vision: sources.vision, qwen2: sources.qwen2, bvllm: sources.bvllm, lora: sources.lora },
      tokenizerDir: tokenizerDir(sources),
      questionTokenizerDir: questionTokenizerDir(sources),
      source,
      close: () => source.close(),
    };
  } catch (error) {
    for (const s of opened) s.close();
    throw error;
  }
}

function skipReason(source: SourceName, key: string, ownTower: boolean): string {
  if (source !== 'instructblip') return 'dropped by the key table';
  if (INSTRUCTBLIP_UNUSED.test(key)) return "InstructBLIP's own LLM, not used";
  return ownTower && key.startsWith('vision_model.') ? 'the tower comes from the vision folder' : 'dropped by the key table';
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * The tower's position table at another image size (B-VLLM runs EVA's 224 px checkpoint at 336, spec §1.0):
 * resized once, bicubic, as LAVIS does at load. Anything but a square grid of the right width stays a mismatch.
 */
function positionResize(key: string, actual: readonly number[], expected: readonly number[], config: PipelineConfig): { apply: (v: Float32Array) => Float32Array; note: string } | undefined {
  if (key !== `${VISION_PREFIX}embeddings.position_embedding` && key !== `${VISION_PREFIX}embeddings.position_embedding.weight`) return undefined;
  const vit = moduleConfigs(config).vit;
  const dim = vit.hiddenSize;
  const prefix = vit.family === 'siglip' ? 0 : 1;
  if (actual.length !== expected.length || actual[actual.length - 1] !== dim) return undefined;
  const rows = actual.reduce((a, b) => a * b, 1) / dim;
  const inGrid = Math.round(Math.sqrt(rows - prefix));
  if (inGrid * inGrid !== rows - prefix) return undefined;
  const grid = vit.imageSize / vit.patchSize;
  return {
    apply: (values) => interpolatePositions(values, dim, [inGrid, inGrid], [grid, grid], prefix),
    note: `positions resized ${inGrid}×${inGrid} → ${grid}×${grid}`,
  };
}

function tokenizerDir(sources: ConversionSources): string {
  const dir = sources.tokenizer ?? sources.qwen2 ?? sources.bvllm;
  if (!dir || !existsSync(join(dir, 'tokenizer.json'))) throw new CheckpointFormatError(dir ?? '(none)', 'no LLM tokenizer (tokenizer.json): give the Qwen2 folder or a tokenizer folder');
  return dir;
}

function questionTokenizerDir(sources: ConversionSources): string {
  const candidates = [sources.questionTokenizer, sources.instructblip && join(sources.instructblip, 'qformer_tokenizer'), sources.bvllm && join(sources.bvllm, QUESTION_TOKENIZER_DIR)];
  const dir = candidates.find((d): d is string => !!d && existsSync(d));
  if (!dir) throw new CheckpointFormatError(sources.instructblip ?? sources.bvllm ?? '(none)', "no question tokenizer: InstructBLIP's qformer_tokenizer/ (or a B-VLLM folder's question_tokenizer/) is needed");
  return dir;
}
