import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, Rng, SafetensorsFile, TensorSource, WeightsError, initBackend, readHfConfig, tf, writeSafetensors, type WeightSource } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { inFolderLoraMergedSource, loraMergedSource } from './lora-merge-source.js';
import { loadLoraAdapter } from './lora-peft.js';
import { qwen2ConfigFromHf } from './qwen2-config.js';
import { Qwen2Model } from './qwen2-model.js';

const fixture = (name: string) => fileURLToPath(new URL(`../../../../shared/fixtures/${name}/`, import.meta.url));
const baseDir = fixture('qwen2-tiny-s2');
const loraDir = fixture('qwen2-tiny-s2-lora');
interface Expected {
  input_ids: number[];
  last_logits: number[];
  argmax_per_pos: number[];
  r: number;
  lora_alpha: number;
  scaling: number;
  adapter_tensors: { name: string; shape: number[] }[];
}
const expected: Expected = JSON.parse(readFileSync(join(loraDir, 'expected.json'), 'utf8'));
const adapterConfig = JSON.parse(readFileSync(join(loraDir, 'adapter_config.json'), 'utf8'));
/** `base_model.model.X.lora_A.weight` → the base key `X.weight`, for every adapted weight of the fixture. */
const adaptedKeys = expected.adapter_tensors.filter((t) => t.name.endsWith('.lora_A.weight')).map((t) => t.name.slice('base_model.model.'.length, -'.lora_A.weight'.length) + '.weight');

beforeAll(async () => {
  await initBackend();
});

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

/** An adapter folder beside the fixture's: its config patched and its tensors edited (`undefined` drops one). */
function adapterVariant(patch: Record<string, unknown>, edit: (tensors: Map<string, { values: Float32Array; shape: number[] }>) => void = () => {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'lora-merge-'));
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...adapterConfig, ...patch }));
  const file = SafetensorsFile.open(join(loraDir, 'adapter_model.safetensors'));
  const tensors = new Map(file.keys().map((k) => [k, { values: file.readFloat32(k), shape: file.info(k).shape }]));
  file.close();
  edit(tensors);
  writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors);
  return dir;
}

/** The fixture adapter's A and B for base key `key`, and `s·B·A` computed by tfjs. */
function deltaOf(key: string, scaling: number): Float32Array {
  const file = SafetensorsFile.open(join(loraDir, 'adapter_model.safetensors'));
  const module = key.slice(0, -'.weight'.length);
  const [a, b] = ['A', 'B'].map((m) => file.readTensor(`base_model.model.${module}.lora_${m}.weight`));
  file.close();
  const delta = tf.tidy(() => tf.mul(tf.matMul(b, a), scaling).dataSync() as Float32Array);
  tf.dispose([a, b]);
  return delta;
}

describe('loraMergedSource (PEFT fixture, spec §2)', () => {
  it('merges exactly what LoraAdapter.merge() gives the tfjs model, and passes other keys through', () => {
    const source = loraMergedSource(TensorSource.fromDir(baseDir), loraDir);
    const model = Qwen2Model.load(baseDir);
    const adapter = loadLoraAdapter(model, loraDir);
    adapter.merge();
    expect(adaptedKeys.length).toBe(expected.adapter_tensors.length / 2);
    const base = TensorSource.fromDir(baseDir);
    for (const key of source.keys()) {
      const merged = source.read(key);
      expect(source.info(key)).toEqual(base.info(key));
      if (adaptedKeys.includes(key)) {
        expect(maxAbsDiff(merged, model.store.get(key).dataSync() as Float32Array), key).toBeLessThan(1e-6);
        expect(maxAbsDiff(merged, base.read(key)), `${key} is changed`).toBeGreaterThan(0);
        expect(source.origin(key)).toBe(`lora-merged(${base.origin(key)} + ${loraDir})`);
      } else {
        expect(merged, key).toEqual(base.read(key));
        expect(source.origin(key)).toBe(base.origin(key));
      }
    }
    base.close();
    adapter.detach();
    model.dispose();
    source.close();
  });

  it('a model built from the merged weights gives the adapted logits of expected.json', () => {
    const source = loraMergedSource(TensorSource.fromDir(baseDir), loraDir);
    const tensors = new Map(source.keys().map((k) => [k, tf.tensor(source.read(k), source.info(k).shape)]));
    source.close();
    const model = Qwen2Model.fromTensors(qwen2ConfigFromHf(readHfConfig(baseDir)), tensors);
    const ids = expected.input_ids;
    const logits = tf.tidy(() => model.forward({ inputsEmbeds: model.embed([ids]) }).logits);
    const last = Array.from(tf.tidy(() => tf.slice(logits, [0, ids.length - 1, 0], [1, 1, -1])).dataSync());
    expect(Math.max(...last.map((v, i) => Math.abs(v - expected.last_logits[i])))).toBeLessThan(1e-4);
    expect(Array.from(tf.tidy(() => tf.argMax(logits, -1)).dataSync())).toEqual(expected.argmax_per_pos);
    logits.dispose();
    model.dispose();
  });

  it('scales by α/√r with rsLoRA', () => {
    const source = loraMergedSource(TensorSource.fromDir(baseDir), adapterVariant({ use_rslora: true }));
    const base = TensorSource.fromDir(baseDir);
    const key = adaptedKeys[0];
    const delta = deltaOf(key, expected.lora_alpha / Math.sqrt(expected.r));
    expect(maxAbsDiff(source.read(key), base.read(key).map((w, i) => w + delta[i]))).toBeLessThan(1e-6);
    base.close();
    source.close();
  });

  it('adds the product transposed to fan-in-fan-out ([in, out]) weights', () => {
    const base = TensorSource.fromDir(baseDir);
    const transposed = (k: string) => {
      const [out, inFeatures] = base.info(k).shape;
      const w = tf.tensor(base.read(k), [out, inFeatures]);
      const t = tf.tidy(() => tf.transpose(w).dataSync() as Float32Array);
      w.dispose();
      return t;
    };
    // The base as a Conv1D-style checkpoint stores it: every adapted weight transposed.
    const transposedBase: WeightSource = {
      keys: () => base.keys(),
      has: (k) => base.has(k),
      info: (k) => (adaptedKeys.includes(k) ? { dtype: 'F32', shape: [...base.info(k).shape].reverse() } : base.info(k)),
      read: (k) => (adaptedKeys.includes(k) ? transposed(k) : base.read(k)),
      origin: (k) => base.origin(k),
      close: () => base.close(),
    };
    const source = loraMergedSource(transposedBase, adapterVariant({ fan_in_fan_out: true }));
    const key = adaptedKeys.find((k) => k.endsWith('mlp.down_proj.weight'))!;
    const [out, inFeatures] = base.info(key).shape;
    const merged = tf.tensor(source.read(key), [inFeatures, out]);
    const back = tf.tidy(() => tf.transpose(merged).dataSync() as Float32Array);
    const delta = deltaOf(key, expected.scaling);
    expect(maxAbsDiff(back, base.read(key).map((v, i) => v + delta[i]))).toBeLessThan(1e-6);
    merged.dispose();
    source.close();
  });

  it('lists every adapter key that adapts nothing, every unpaired matrix and every mis-shaped one in one WeightsError', () => {
    const [first, second] = adaptedKeys.map((k) => k.slice(0, -'.weight'.length));
    const variant = adapterVariant({}, (tensors) => {
      // A module the base lacks (layer 99), a B without its A, and an A of the wrong rank.
      tensors.set('base_model.model.model.layers.99.self_attn.q_proj.lora_A.weight', { values: new Float32Array(4), shape: [4, 1] });
      tensors.delete(`base_model.model.${first}.lora_A.weight`);
      const a = tensors.get(`base_model.model.${second}.lora_A.weight`)!;
      tensors.set(`base_model.model.${second}.lora_A.weight`, { values: a.values.subarray(0, a.values.length / 2), shape: [a.shape[0] / 2, a.shape[1]] });
    });
    let error: unknown;
    try {
      loraMergedSource(TensorSource.fromDir(baseDir), variant);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(WeightsError);
    const w = error as WeightsError;
    expect(w.unexpected).toEqual(['base_model.model.model.layers.99.self_attn.q_proj.lora_A.weight']);
    expect(w.missing).toEqual([`base_model.model.${first}.lora_A.weight`]);
    expect(w.misshaped.map((m) => m.key)).toEqual([`base_model.model.${second}.lora_A.weight`]);
    expect(w.message).toContain('layers.99');
  });

  it('treats adapter matrices of a module outside target_modules as unexpected (PEFT would not load them)', () => {
    const modules = adapterConfig.target_modules as string[];
    const dropped = modules[0];
    const variant = adapterVariant({ target_modules: modules.slice(1) });
    let error: unknown;
    try {
      loraMergedSource(TensorSource.fromDir(baseDir), variant);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(WeightsError);
    const unexpected = (error as WeightsError).unexpected;
    expect(unexpected.length).toBe(expected.adapter_tensors.filter((t) => t.name.includes(`.${dropped}.`)).length);
    expect(unexpected.every((k) => k.includes(`.${dropped}.`))).toBe(true);
  });

  it('reads keys under a prefix, and refuses configs whose merge would differ', () => {
    const base = TensorSource.fromDir(baseDir);
    const prefixed: WeightSource = {
      keys: () => base.keys().map((k) => `llm.${k}`),
      has: (k) => k.startsWith('llm.') && base.has(k.slice(4)),
      info: (k) => base.info(k.slice(4)),
      read: (k) => base.read(k.slice(4)),
      origin: (k) => base.origin(k.slice(4)),
      close: () => base.close(),
    };
    const source = loraMergedSource(prefixed, loraDir, { keyPrefix: 'llm.' });
    const key = adaptedKeys[0];
    const delta = deltaOf(key, expected.scaling);
    expect(maxAbsDiff(source.read(`llm.${key}`), base.read(key).map((w, i) => w + delta[i]))).toBeLessThan(1e-6);
    source.close();
    for (const patch of [{ use_dora: true }, { lora_bias: true }, { rank_pattern: { q_proj: 8 } }, { peft_type: 'IA3' }])
      expect(() => loraMergedSource(TensorSource.fromDir(baseDir), adapterVariant(patch)), JSON.stringify(patch)).toThrow(ConfigError);
  });
});

describe('loraMergedSource arithmetic', () => {
  it('merges ranks above and beside the 8-row unrolling exactly as tfjs computes W + s·B·A', () => {
    const rng = Rng.fromSeed(5);
    const key = 'model.layers.0.self_attn.q_proj.weight';
    for (const r of [8, 11, 19]) {
      const [out, inFeatures] = [6, 13];
      const w = rng.normalArray(out * inFeatures);
      const a = rng.normalArray(r * inFeatures);
      const b = rng.normalArray(out * r);
      const dir = mkdtempSync(join(tmpdir(), 'lora-merge-rank-'));
      writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r, lora_alpha: 3, target_modules: ['q_proj'] }));
      writeSafetensors(join(dir, 'adapter_model.safetensors'), new Map([
        [`base_model.model.${key.slice(0, -'.weight'.length)}.lora_A.weight`, { values: a, shape: [r, inFeatures] }],
        [`base_model.model.${key.slice(0, -'.weight'.length)}.lora_B.weight`, { values: b, shape: [out, r] }],
      ]));
      const base: WeightSource = {
        keys: () => [key],
        has: (k) => k === key,
        info: () => ({ dtype: 'BF16', shape: [out, inFeatures] }),
        read: () => w.slice(),
        origin: () => 'memory',
        close: () => {},
      };
      const source = loraMergedSource(base, dir);
      const expectedW = tf.tidy(() => tf.add(tf.tensor(w, [out, inFeatures]), tf.mul(tf.matMul(tf.tensor(b, [out, r]), tf.tensor(a, [r, inFeatures])), 3 / r)).dataSync() as Float32Array);
      expect(maxAbsDiff(source.read(key), expectedW), `r ${r}`).toBeLessThan(1e-5);
      // The stored dtype is the base's, so a converter keeps the checkpoint's precision.
      expect(source.info(key).dtype).toBe('BF16');
      source.close();
    }
  });
});

describe('loraMergedSource folders', () => {
  it('needs adapter_config.json', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lora-merge-empty-'));
    copyFileSync(join(loraDir, 'adapter_model.safetensors'), join(dir, 'adapter_model.safetensors'));
    expect(() => loraMergedSource(TensorSource.fromDir(baseDir), dir)).toThrow('cannot read the adapter config');
  });
});

describe('inFolderLoraMergedSource (a bvllm folder that keeps its adapter unmerged)', () => {
  it('reads the base weights merged exactly as loraMergedSource does from the PEFT folder, with the adapter keys hidden', () => {
    // One safetensors holding the fixture's base weights and its adapter's tensors side by side, as training saves a model.
    const dir = mkdtempSync(join(tmpdir(), 'lora-in-folder-'));
    const tensors = new Map<string, { values: Float32Array; shape: number[] }>();
    for (const path of [join(baseDir, 'model.safetensors'), join(loraDir, 'adapter_model.safetensors')]) {
      const file = SafetensorsFile.open(path);
      for (const k of file.keys()) tensors.set(k, { values: file.readFloat32(k), shape: file.info(k).shape });
      file.close();
    }
    writeSafetensors(join(dir, 'model.safetensors'), tensors);
    const lora = { r: expected.r, alpha: expected.lora_alpha, targetModules: adapterConfig.target_modules };
    const inFolder = inFolderLoraMergedSource(TensorSource.fromDir(dir), lora);
    const reference = loraMergedSource(TensorSource.fromDir(baseDir), loraDir);
    expect(inFolder.keys().sort()).toEqual(reference.keys().sort());
    expect(inFolder.keys().some((k) => k.includes('lora_'))).toBe(false);
    expect(inFolder.has(expected.adapter_tensors[0].name)).toBe(false);
    for (const key of reference.keys()) expect([key, maxAbsDiff(inFolder.read(key), reference.read(key))]).toEqual([key, 0]);
    expect(adaptedKeys.every((k) => inFolder.origin(k).startsWith('lora-merged('))).toBe(true);
    inFolder.close();
    reference.close();
    // A folder without adapter keys is returned as it is.
    const plain = TensorSource.fromDir(baseDir);
    expect(inFolderLoraMergedSource(plain, lora)).toBe(plain);
    plain.close();
  });
});
