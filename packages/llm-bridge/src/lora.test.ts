import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, Rng, SafetensorsFile, WeightsError, initBackend, tf } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { causalLmLoss } from './causal-lm-loss.js';
import { LoraAdapter } from './lora.js';
import { loadLoraAdapter, saveLoraAdapter } from './lora-peft.js';
import { Qwen2Model } from './qwen2-model.js';

const fixture = (name: string) => fileURLToPath(new URL(`../../../../shared/fixtures/${name}/`, import.meta.url));
const baseDir = fixture('qwen2-tiny-s2');
const loraDir = fixture('qwen2-tiny-s2-lora');
interface Expected {
  input_ids: number[];
  last_logits: number[];
  argmax_per_pos: number[];
}
const expectedOf = (dir: string): Expected => JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
const ids = expectedOf(loraDir).input_ids;

beforeAll(async () => {
  await initBackend();
});

function logitsOf(model: Qwen2Model): tf.Tensor3D {
  return tf.tidy(() => model.forward({ inputsEmbeds: model.embed([ids]) }).logits);
}

function expectMatches(model: Qwen2Model, expected: Expected) {
  const logits = logitsOf(model);
  const last = Array.from(tf.tidy(() => tf.slice(logits, [0, ids.length - 1, 0], [1, 1, -1])).dataSync());
  expect(Math.max(...last.map((v, i) => Math.abs(v - expected.last_logits[i])))).toBeLessThan(1e-4);
  expect(Array.from(tf.tidy(() => tf.argMax(logits, -1)).dataSync())).toEqual(expected.argmax_per_pos);
  logits.dispose();
}

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

describe('LoRA against the PEFT fixture (spec §2)', () => {
  it('the PEFT adapter loads and matches the adapted logits; disabled, the base ones', () => {
    const model = Qwen2Model.load(baseDir);
    const adapter = loadLoraAdapter(model, loraDir);
    expect(adapter.scaling).toBe(2);
    expectMatches(model, expectedOf(loraDir));
    adapter.enabled = false;
    expectMatches(model, expectedOf(baseDir));
    adapter.enabled = true;
    adapter.detach();
    expectMatches(model, expectedOf(baseDir));
    model.dispose();
  });

  it('merged equals unmerged, and unmerging restores the base weights', () => {
    const model = Qwen2Model.load(baseDir);
    const w0 = model.layers[1].baseLinears.down_proj.weight.clone();
    const adapter = loadLoraAdapter(model, loraDir);
    const unmerged = logitsOf(model);
    adapter.merge();
    expect(adapter.merged).toBe(true);
    const merged = logitsOf(model);
    expect(maxDiff(unmerged, merged)).toBeLessThan(1e-5);
    expect(maxDiff(w0, model.layers[1].baseLinears.down_proj.weight)).toBeGreaterThan(1e-3);
    expectMatches(model, expectedOf(loraDir));
    adapter.unmerge();
    expect(maxDiff(w0, model.layers[1].baseLinears.down_proj.weight)).toBeLessThan(1e-6);
    tf.dispose([unmerged, merged, w0]);
    adapter.detach();
    model.dispose();
  });

  it('PEFT round trip: identical names, shapes and float32 bytes; the saved adapter gives the same logits', () => {
    const model = Qwen2Model.load(baseDir);
    const adapter = loadLoraAdapter(model, loraDir);
    const out = mkdtempSync(join(tmpdir(), 'lora-'));
    saveLoraAdapter(adapter, out, { baseModel: '../qwen2-tiny-s2' });
    adapter.detach();
    const original = SafetensorsFile.open(join(loraDir, 'adapter_model.safetensors'));
    const saved = SafetensorsFile.open(join(out, 'adapter_model.safetensors'));
    expect(saved.keys().sort()).toEqual(original.keys().sort());
    expect(saved.keys()).toContain('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    for (const key of original.keys()) {
      expect(saved.info(key).dtype).toBe('F32');
      expect(saved.info(key).shape).toEqual(original.info(key).shape);
      expect(Buffer.from(saved.readBytes(key)).equals(Buffer.from(original.readBytes(key)))).toBe(true);
    }
    original.close();
    saved.close();
    const a = JSON.parse(readFileSync(join(loraDir, 'adapter_config.json'), 'utf8'));
    const b = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    for (const field of ['peft_type', 'task_type', 'r', 'lora_alpha']) expect(b[field]).toEqual(a[field]);
    expect(new Set(b.target_modules)).toEqual(new Set(a.target_modules));
    const reloaded = loadLoraAdapter(model, out);
    expectMatches(model, expectedOf(loraDir));
    reloaded.detach();
    model.dispose();
  });

  it('refuses adapters we would compute wrongly, and mis-shaped tensors', () => {
    const model = Qwen2Model.load(baseDir);
    const config = JSON.parse(readFileSync(join(loraDir, 'adapter_config.json'), 'utf8'));
    const write = (patch: Record<string, unknown>) => {
      const dir = mkdtempSync(join(tmpdir(), 'lora-bad-'));
      writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...config, ...patch }));
      copyFileSync(join(loraDir, 'adapter_model.safetensors'), join(dir, 'adapter_model.safetensors'));
      return dir;
    };
    expect(() => loadLoraAdapter(model, write({ use_rslora: true }))).toThrow(ConfigError);
    expect(() => loadLoraAdapter(model, write({ rank_pattern: { q_proj: 8 } }))).toThrow(ConfigError);
    expect(() => loadLoraAdapter(model, write({ target_modules: ['lm_head'] }))).toThrow(ConfigError);
    expect(() => loadLoraAdapter(model, write({ r: 2 }))).toThrow(WeightsError);
    // A failed load leaves the model as it was.
    expectMatches(model, expectedOf(baseDir));
    model.dispose();
  });
});

describe('LoRA training', () => {
  it('a fresh adapter is a no-op (B = 0) and only the adapter matrices get gradients', () => {
    const model = Qwen2Model.load(baseDir);
    const before = logitsOf(model);
    const adapter = LoraAdapter.attach(model, { r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'v_proj'] }, Rng.fromSeed(1));
    const after = logitsOf(model);
    expect(maxDiff(before, after)).toBe(0);
    expect(adapter.variables().size).toBe(3 * 2 * 2);
    const { value, grads } = tf.variableGrads(() => causalLmLoss(model.forward({ inputsEmbeds: model.embed([ids]) }).logits, [ids]));
    const adapterNames = new Set([...adapter.variables().values()].map((v) => v.name));
    const modelNames = new Set(model.store.entries().map(([, v]) => v.name));
    const gradNames = Object.keys(grads);
    expect(gradNames.filter((n) => modelNames.has(n))).toEqual([]);
    expect(new Set(gradNames.filter((n) => adapterNames.has(n)))).toEqual(adapterNames);
    // B starts at zero, so B's gradient is what moves first; A's is zero until B changes.
    const bGrad = grads[adapter.variables().get('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight')!.name];
    expect(tf.tidy(() => tf.max(tf.abs(bGrad)).dataSync()[0])).toBeGreaterThan(0);
    tf.dispose([value, ...Object.values(grads), before, after]);
    adapter.detach();
    expect(model.store.get('model.norm.weight').trainable).toBe(true);
    model.dispose();
  });

  it('dropout acts only in training mode and is seeded', () => {
    const model = Qwen2Model.load(baseDir);
    const run = () => {
      const adapter = loadLoraAdapter(model, loraDir, Rng.fromSeed(3));
      const eval1 = logitsOf(model);
      (adapter as unknown as { config: { dropout: number } }).config.dropout = 0.5;
      adapter.training = true;
      const train = logitsOf(model);
      adapter.detach();
      return { eval1, train };
    };
    const a = run();
    const b = run();
    expect(maxDiff(a.train, a.eval1)).toBeGreaterThan(1e-3);
    expect(maxDiff(a.train, b.train)).toBe(0);
    tf.dispose([a.eval1, a.train, b.eval1, b.train]);
    model.dispose();
  });

  it('forward, merge and unmerge do not leak tensors', () => {
    const model = Qwen2Model.load(baseDir);
    const adapter = loadLoraAdapter(model, loraDir);
    const run = () => {
      tf.dispose(logitsOf(model));
      adapter.merge();
      adapter.unmerge();
    };
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run();
    expect(tf.memory().numTensors).toBe(before);
    adapter.detach();
    model.dispose();
  });
});
