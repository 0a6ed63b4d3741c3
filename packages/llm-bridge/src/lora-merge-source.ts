/**
 * A PEFT LoRA adapter folded into its base weights one tensor at a time, as a WeightSource: what the streamed ONNX
 * export and `bvllm convert` read, so a fine-tuned 7B model is exported without a tfjs model or a merged copy on disk.
 * `W' = W + s·B·A` (`s = α/r`, or `α/√r` with rsLoRA), exactly what {@link LoraAdapter.merge} computes on the tfjs model.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointFormatError, SafetensorsFile, WeightsError, configErrorFrom, tf, type WeightInfo, type WeightSource } from '@bvllm/core';
import { z } from 'zod';
import { isLoraKey, peftKey, type LoraConfig } from './lora.js';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, peftLoraConfig } from './lora-peft.js';

// The tfjs adapter refuses rsLoRA and fan-in-fan-out because its LoraLinear does not implement them; a merge is
// plain arithmetic, so both are honoured here. Options that would add terms a merge of A and B cannot express stay refused.
const mergeableLoraConfig = peftLoraConfig.extend({
  use_rslora: z.boolean().default(false),
  fan_in_fan_out: z.boolean().default(false),
  lora_bias: z.literal(false).default(false),
  target_parameters: z.null().nullish(),
  trainable_token_indices: z.null().nullish(),
  layer_replication: z.null().nullish(),
});

/** One adapted weight: the base key and the adapter's A `[r, in]` and B `[out, r]` keys. */
interface AdaptedWeight {
  a: string;
  b: string;
}

/**
 * `base` with the PEFT adapter in `adapterDir` (`adapter_config.json` + `adapter_model.safetensors`) merged in at
 * `read`. The adapter tensor `base_model.model.<module>.lora_{A,B}.weight` adapts the base key
 * `<keyPrefix><module>.weight` (`keyPrefix` '' for a Hugging Face or bvllm folder, whose Qwen2 keys are `model.*`).
 * Every other key passes through. Checked up front from headers alone: an adapter key that is not half of an A/B
 * pair for a base weight of a target module, a module whose base weight is absent, an unpaired matrix or a shape that
 * does not fit the base give one WeightsError listing every such key. `info` is the base's (its stored dtype, so a
 * converter keeps the checkpoint's precision); the merge itself runs in float64 and rounds once to float32.
 */
export function loraMergedSource(base: WeightSource, adapterDir: string, options: { keyPrefix?: string } = {}): WeightSource {
  const keyPrefix = options.keyPrefix ?? '';
  const configPath = join(adapterDir, ADAPTER_CONFIG_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch (cause) {
    throw new CheckpointFormatError(configPath, `cannot read the adapter config (${(cause as Error).message})`, { cause });
  }
  const parsed = mergeableLoraConfig.safeParse(raw);
  if (!parsed.success) throw configErrorFrom(configPath, parsed.error);
  const config = parsed.data;
  const scaling = config.use_rslora ? config.lora_alpha / Math.sqrt(config.r) : config.lora_alpha / config.r;
  // PEFT matches a target against the end of the module path, on a dot boundary.
  const targeted = (module: string) => config.target_modules.some((t) => module === t || module.endsWith(`.${t}`));
  const file = SafetensorsFile.open(join(adapterDir, ADAPTER_WEIGHTS_FILE));
  const adapter: AdapterTensors = { keys: () => file.keys(), has: (key) => file.tensors.has(key), shape: (key) => file.info(key).shape, read: (key) => file.readFloat32(key), close: () => file.close() };
  return mergedSource(base, adapter, { r: config.r, scaling, fanInFanOut: config.fan_in_fan_out, targeted, keyPrefix, label: adapterDir });
}

/**
 * A bvllm model folder's own LoRA folded in: the folder keeps the adapter unmerged beside its base weights (PEFT
 * key names, `base_model.model.model.layers.N.….lora_{A,B}.weight`; r, α and the target modules in `bvllm.json`'s
 * `lora`), and an ONNX export must read the merged weights, as the tfjs model computes them (`LoraAdapter`). The
 * adapter keys are hidden from the result; a folder without them is returned as it is.
 */
export function inFolderLoraMergedSource(source: WeightSource, lora: Pick<LoraConfig, 'r' | 'alpha' | 'targetModules'>): WeightSource {
  if (!source.keys().some(isLoraKey)) return source;
  // Methods, not a spread: a source may be a class instance whose methods live on its prototype.
  const base: WeightSource = {
    keys: () => source.keys().filter((k) => !isLoraKey(k)),
    has: (key) => !isLoraKey(key) && source.has(key),
    info: (key) => source.info(key),
    read: (key) => source.read(key),
    origin: (key) => source.origin(key),
    close: () => source.close(),
  };
  const adapter: AdapterTensors = { keys: () => source.keys().filter(isLoraKey), has: (key) => source.has(key), shape: (key) => source.info(key).shape, read: (key) => source.read(key), close: () => undefined };
  const targeted = (module: string) => lora.targetModules.some((t) => module.endsWith(`.${t}`));
  return mergedSource(base, adapter, { r: lora.r, scaling: lora.alpha / lora.r, fanInFanOut: false, targeted, keyPrefix: '', label: 'the folder\'s adapter' });
}

/** Where the adapter's A and B matrices are read from. */
interface AdapterTensors {
  keys(): string[];
  has(key: string): boolean;
  shape(key: string): number[];
  read(key: string): Float32Array;
  close(): void;
}

interface MergeSpec {
  r: number;
  scaling: number;
  fanInFanOut: boolean;
  targeted(module: string): boolean;
  keyPrefix: string;
  /** Names the adapter in `origin` and errors. */
  label: string;
}

/** `base` with `adapter` merged in at `read`, every pair checked up front from shapes alone (see {@link loraMergedSource}). */
function mergedSource(base: WeightSource, adapter: AdapterTensors, spec: MergeSpec): WeightSource {
  const { keyPrefix, r } = spec;
  const name = `lora-merged(${spec.label})`;
  const adapted = new Map<string, AdaptedWeight>();
  try {
    const left = new Set(adapter.keys());
    const missing: string[] = [];
    const misshaped: { key: string; expected: number[]; actual: number[] }[] = [];
    for (const key of base.keys()) {
      if (!key.startsWith(keyPrefix) || !key.endsWith('.weight')) continue;
      const module = key.slice(keyPrefix.length, -'.weight'.length);
      const a = peftKey(module, 'A');
      const b = peftKey(module, 'B');
      if (!left.has(a) && !left.has(b)) continue;
      if (!spec.targeted(module)) continue; // left in `left`: reported as unexpected, PEFT would not load it
      left.delete(a);
      left.delete(b);
      if (!adapter.has(a) || !adapter.has(b)) {
        missing.push(adapter.has(a) ? b : a);
        continue;
      }
      const w = base.info(key).shape;
      const shapeA = adapter.shape(a);
      const shapeB = adapter.shape(b);
      if (w.length !== 2) {
        // The shape the adapter implies, [out, in] (or [in, out] with fan_in_fan_out).
        misshaped.push({ key, expected: spec.fanInFanOut ? [shapeA[1], shapeB[0]] : [shapeB[0], shapeA[1]], actual: w });
        continue;
      }
      const [out, inFeatures] = spec.fanInFanOut ? [w[1], w[0]] : [w[0], w[1]];
      const expectA = [r, inFeatures];
      const expectB = [out, r];
      if (shapeA.join() !== expectA.join()) misshaped.push({ key: a, expected: expectA, actual: shapeA });
      else if (shapeB.join() !== expectB.join()) misshaped.push({ key: b, expected: expectB, actual: shapeB });
      else adapted.set(key, { a, b });
    }
    // What is left adapts nothing the base holds (or a module outside target_modules), so a merge would drop it.
    const unexpected = [...left];
    if (missing.length || unexpected.length || misshaped.length) throw new WeightsError(name, missing, unexpected, misshaped);
  } catch (error) {
    adapter.close();
    throw error;
  }

  return {
    keys: () => base.keys(),
    has: (key) => base.has(key),
    info: (key): WeightInfo => base.info(key),
    read: (key) => {
      const pair = adapted.get(key);
      const w = base.read(key);
      if (!pair) return w;
      addScaledProduct(w, adapter.read(pair.b), adapter.read(pair.a), r, spec.scaling, spec.fanInFanOut);
      return w;
    },
    origin: (key) => (adapted.has(key) ? `lora-merged(${base.origin(key)} + ${spec.label})` : base.origin(key)),
    close: () => {
      adapter.close();
      base.close();
    },
  };
}

/**
 * `w += s·(B·A)` in place, B `[out, r]`, A `[r, in]`, w `[out, in]` (or `[in, out]`, the product transposed, when
 * `transposed`: PEFT's fan_in_fan_out for Conv1D-style weights). The product runs on the tfjs backend, one adapter
 * pair at a time (freed before the next): a rank-128 merge of Qwen2-7B is about 1.7 TFLOP, which the WASM matmul
 * does at 9–14 GFLOP/s on one core against 0.6–0.9 for a blocked plain-JS loop (measured side by side), and it is the
 * same product `LoraAdapter.merge` computes.
 */
function addScaledProduct(w: Float32Array, b: Float32Array, a: Float32Array, r: number, s: number, transposed: boolean): void {
  const out = b.length / r;
  const n = a.length / r;
  const product = tf.tidy(() => tf.matMul(tf.tensor2d(b, [out, r]), tf.tensor2d(a, [r, n])));
  const delta = product.dataSync() as Float32Array;
  product.dispose();
  if (transposed) {
    for (let i = 0; i < out; i++) for (let j = 0; j < n; j++) w[j * out + i] += s * delta[i * n + j];
  } else for (let i = 0; i < delta.length; i++) w[i] += s * delta[i];
}
