import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, Rng, SafetensorsFile, WeightsError, bf16ToF32, f32ToBf16, initBackend, readHfConfig, readSafetensors, tf, writeSafetensors } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { qwen2ConfigFromHf } from './qwen2-config.js';
import { Qwen2Model, disposeKvCache } from './qwen2-model.js';

const fixture = (name: string) => fileURLToPath(new URL(`../../../../shared/fixtures/${name}/`, import.meta.url));
interface Expected {
  input_ids: number[];
  last_logits: number[];
  argmax_per_pos: number[];
}
const expected = (name: string): Expected => JSON.parse(readFileSync(`${fixture(name)}expected.json`, 'utf8'));

beforeAll(async () => {
  await initBackend();
});

function runFixture(model: Qwen2Model, ids: number[]) {
  return tf.tidy(() => {
    const embeds = model.embed([ids]);
    const { logits } = model.forward({ inputsEmbeds: embeds, attentionMask: tf.ones([1, ids.length], 'int32') });
    const last = tf.slice(logits, [0, ids.length - 1, 0], [1, 1, -1]);
    return { last: Array.from(last.dataSync()), argmax: Array.from(tf.argMax(logits, -1).dataSync()) };
  });
}

describe('Qwen2Model against the fixtures (float64 numpy reference)', () => {
  for (const name of ['qwen2-tiny-s2', 'qwen2-tiny-s3']) {
    it(`${name}: last logits within 1e-4 and greedy argmax per position exact`, () => {
      const e = expected(name);
      const model = Qwen2Model.load(fixture(name));
      const { last, argmax } = runFixture(model, e.input_ids);
      const maxErr = Math.max(...last.map((v, i) => Math.abs(v - e.last_logits[i])));
      expect(maxErr).toBeLessThan(1e-4);
      expect(argmax).toEqual(e.argmax_per_pos);
      model.dispose();
    });
  }

  it('s3 is tied (no lm_head parameter), s2 is not', () => {
    const tied = Qwen2Model.load(fixture('qwen2-tiny-s3'));
    const untied = Qwen2Model.load(fixture('qwen2-tiny-s2'));
    expect(tied.store.has('lm_head.weight')).toBe(false);
    expect(tied.lmHead).toBe(tied.embedTokens);
    expect(untied.store.has('lm_head.weight')).toBe(true);
    tied.dispose();
    untied.dispose();
  });

  it('a checkpoint of another shape is a WeightsError naming the keys', () => {
    const model = Qwen2Model.create({ vocabSize: 300, hiddenSize: 64, numLayers: 2, numHeads: 8, numKvHeads: 2, intermediateSize: 160, tieWordEmbeddings: false }, Rng.fromSeed(1));
    const source = Qwen2Model.load(fixture('qwen2-tiny-s2'));
    const snapshot = source.store.snapshot();
    let error: unknown;
    try {
      model.loadWeights(snapshot);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WeightsError);
    expect((error as WeightsError).unexpected).toContain('model.layers.2.mlp.down_proj.weight');
    model.dispose();
    source.dispose();
  });

  it('a missing tensor is a WeightsError', () => {
    const model = Qwen2Model.create({ vocabSize: 300, hiddenSize: 64, numLayers: 3, numHeads: 8, numKvHeads: 2, intermediateSize: 160, tieWordEmbeddings: false }, Rng.fromSeed(1));
    const source = Qwen2Model.load(fixture('qwen2-tiny-s2'));
    const snapshot = source.store.snapshot((k) => k !== 'model.norm.weight');
    expect(() => model.loadWeights(snapshot)).toThrow(/missing 1 key\(s\): model\.norm\.weight/);
    model.dispose();
    source.dispose();
  });

  it('rejects a config that is not Qwen2', () => {
    expect(() => Qwen2Model.create({ vocabSize: 10, hiddenSize: 30, numHeads: 4 }, Rng.fromSeed(0))).toThrow(ConfigError);
  });
});

describe('checkpoint layouts', () => {
  it('loads a sharded folder (model.safetensors.index.json) to the same logits', () => {
    const src = fixture('qwen2-tiny-s2');
    const dir = mkdtempSync(join(tmpdir(), 'qwen2-sharded-'));
    const tensors = readSafetensors(join(src, 'model.safetensors'));
    const keys = [...tensors.keys()].sort();
    const half = Math.floor(keys.length / 2);
    const shards = [keys.slice(0, half), keys.slice(half)];
    const weightMap: Record<string, string> = {};
    shards.forEach((names, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      writeSafetensors(join(dir, file), new Map(names.map((k) => [k, tensors.get(k)!])));
      for (const k of names) weightMap[k] = file;
    });
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    copyFileSync(join(src, 'config.json'), join(dir, 'config.json'));
    tf.dispose([...tensors.values()]);
    const e = expected('qwen2-tiny-s2');
    const model = Qwen2Model.load(dir);
    const { last, argmax } = runFixture(model, e.input_ids);
    expect(Math.max(...last.map((v, i) => Math.abs(v - e.last_logits[i])))).toBeLessThan(1e-4);
    expect(argmax).toEqual(e.argmax_per_pos);
    model.dispose();
  });

  it('a folder whose config does not fit its weights is a WeightsError before anything is read', () => {
    const src = fixture('qwen2-tiny-s2');
    const dir = mkdtempSync(join(tmpdir(), 'qwen2-bad-'));
    copyFileSync(join(src, 'model.safetensors'), join(dir, 'model.safetensors'));
    const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: 2, intermediate_size: 128 }));
    const before = tf.memory().numTensors;
    let error: unknown;
    try {
      Qwen2Model.load(dir);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WeightsError);
    const w = error as WeightsError;
    expect(w.unexpected).toContain('model.layers.2.self_attn.q_proj.weight');
    expect(w.misshaped).toContainEqual({ key: 'model.layers.0.mlp.up_proj.weight', expected: [128, 64], actual: [160, 64] });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('loads BF16 weights as their float32 values', () => {
    const src = fixture('qwen2-tiny-s3');
    const dir = mkdtempSync(join(tmpdir(), 'qwen2-bf16-'));
    const tensors = readSafetensors(join(src, 'model.safetensors'));
    writeSafetensors(join(dir, 'model.safetensors'), tensors, { floatDtype: 'BF16' });
    copyFileSync(join(src, 'config.json'), join(dir, 'config.json'));
    const file = SafetensorsFile.open(join(dir, 'model.safetensors'));
    expect(file.info('model.norm.weight').dtype).toBe('BF16');
    file.close();
    // The same weights rounded to bfloat16 by hand, loaded as float32.
    const rounded = new Map([...tensors].map(([k, t]) => [k, tf.tensor(Float32Array.from(t.dataSync(), (v) => bf16ToF32(f32ToBf16(v))), t.shape)]));
    tf.dispose([...tensors.values()]);
    const reference = Qwen2Model.fromTensors(qwen2ConfigFromHf(readHfConfig(src)), rounded);
    const model = Qwen2Model.load(dir);
    const ids = expected('qwen2-tiny-s3').input_ids;
    expect(runFixture(model, ids).last).toEqual(runFixture(reference, ids).last);
    model.dispose();
    reference.dispose();
  });
});

describe('KV cache', () => {
  it('prefill then one token at a time equals the full forward (right-padded batch of 2)', () => {
    const model = Qwen2Model.load(fixture('qwen2-tiny-s2'));
    const ids = expected('qwen2-tiny-s2').input_ids;
    const before = tf.memory().numTensors;
    const [full, stepped] = tf.tidy(() => {
      const batch = [ids, ids.map((t, i) => (i < 12 ? (t + 7) % 300 : 0))];
      const mask = tf.tensor2d([ids.map(() => 1), ids.map((_, i) => (i < 12 ? 1 : 0))], undefined, 'int32');
      const embeds = model.embed(batch);
      const whole = model.forward({ inputsEmbeds: embeds, attentionMask: mask }).logits;
      let out = model.forward({ inputsEmbeds: tf.slice(embeds, [0, 0, 0], [2, 9, -1]), attentionMask: tf.slice(mask, [0, 0], [2, 9]), useCache: true });
      const parts = [out.logits];
      for (let i = 9; i < ids.length; i++) {
        const next = model.forward({ inputsEmbeds: tf.slice(embeds, [0, i, 0], [2, 1, -1]), attentionMask: tf.slice(mask, [0, i], [2, 1]), cache: out.cache, useCache: true });
        disposeKvCache(out.cache);
        out = next;
        parts.push(out.logits);
      }
      disposeKvCache(out.cache);
      // Row 1's padded positions are never attended to by real ones; compare real positions only.
      return [tf.slice(whole, [0, 0, 0], [2, 12, -1]), tf.slice(tf.concat(parts, 1), [0, 0, 0], [2, 12, -1])];
    });
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(full, stepped))).dataSync()[0]);
    expect(diff).toBeLessThan(1e-4);
    tf.dispose([full, stepped]);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('padding in row 1 does not change row 0', () => {
    const model = Qwen2Model.load(fixture('qwen2-tiny-s3'));
    const e = expected('qwen2-tiny-s3');
    const argmax = tf.tidy(() => {
      const batch = [e.input_ids, [...e.input_ids.slice(0, 5), ...e.input_ids.slice(5).map(() => 0)]];
      const mask = tf.tensor2d([e.input_ids.map(() => 1), e.input_ids.map((_, i) => (i < 5 ? 1 : 0))], undefined, 'int32');
      return Array.from(tf.argMax(tf.slice(model.forward({ inputsEmbeds: model.embed(batch), attentionMask: mask }).logits, [0, 0, 0], [1, -1, -1]), -1).dataSync());
    });
    expect(argmax).toEqual(e.argmax_per_pos);
    model.dispose();
  });
});

describe('training', () => {
  const tiny = () => Qwen2Model.create({ vocabSize: 11, hiddenSize: 8, numLayers: 1, numHeads: 4, numKvHeads: 2, intermediateSize: 12 }, Rng.fromSeed(9));

  it('the embedding gradient adds dy into each looked-up row (repeated ids accumulate)', () => {
    const model = tiny();
    const ids = [[3, 5, 3]];
    const dy = tf.tidy(() => tf.reshape(tf.range(1, 25), [1, 3, 8]));
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(model.embed(ids), dy)) as tf.Scalar, [model.embedTokens]);
    const g = grads[model.embedTokens.name];
    value.dispose();
    const rows = g.arraySync() as number[][];
    const dyRows = (dy.arraySync() as number[][][])[0];
    expect(rows[3]).toEqual(dyRows[0].map((v, i) => v + dyRows[2][i]));
    expect(rows[5]).toEqual(dyRows[1]);
    expect(rows[0]).toEqual(Array(8).fill(0));
    tf.dispose([dy, g]);
    model.dispose();
  });

  it('the embedding gradient works when every looked-up id is the same one', () => {
    const model = tiny();
    const dy = tf.tidy(() => tf.reshape(tf.range(1, 17), [1, 2, 8]));
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(model.embed([[4, 4]]), dy)) as tf.Scalar, [model.embedTokens]);
    const rows = grads[model.embedTokens.name].arraySync() as number[][];
    const dyRows = (dy.arraySync() as number[][][])[0];
    expect(rows[4]).toEqual(dyRows[0].map((v, i) => v + dyRows[1][i]));
    expect(rows.filter((_, id) => id !== 4).flat().every((v) => v === 0)).toBe(true);
    tf.dispose([value, dy, ...Object.values(grads)]);
    model.dispose();
  });

  it('parameter gradients match central finite differences (GQA, all positions)', () => {
    const model = tiny();
    const ids = [[1, 4, 2, 7, 9]];
    const loss = () => tf.tidy(() => {
      const logits = model.forward({ inputsEmbeds: model.embed(ids) }).logits;
      return tf.sum(tf.mul(logits, tf.sin(tf.reshape(tf.range(0, logits.size), logits.shape))));
    });
    const { grads, value } = tf.variableGrads(loss as () => tf.Scalar);
    for (const key of ['model.layers.0.self_attn.k_proj.weight', 'model.layers.0.self_attn.q_proj.bias', 'model.embed_tokens.weight', 'model.norm.weight']) {
      const variable = model.store.get(key);
      const analytic = grads[variable.name].dataSync();
      const values = variable.dataSync().slice();
      // Probe the entry with the largest analytic gradient, where float32 differences are most reliable.
      let index = 0;
      for (let i = 1; i < analytic.length; i++) if (Math.abs(analytic[i]) > Math.abs(analytic[index])) index = i;
      const eps = 1e-2;
      const at = (delta: number) => {
        const copy = values.slice();
        copy[index] += delta;
        tf.tidy(() => variable.assign(tf.tensor(copy, variable.shape)));
        const l = loss();
        const out = l.dataSync()[0];
        l.dispose();
        return out;
      };
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      tf.tidy(() => variable.assign(tf.tensor(values, variable.shape)));
      expect(Math.abs(numeric - analytic[index])).toBeLessThan(2e-2 * Math.max(1, Math.abs(analytic[index])));
    }
    tf.dispose([value, ...Object.values(grads)]);
    model.dispose();
  });
});

describe('memory', () => {
  it('embed and forward (with and without cache) do not leak tensors', () => {
    const model = Qwen2Model.create({ vocabSize: 50, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 48 }, Rng.fromSeed(3));
    const run = () => {
      const embeds = model.embed([[1, 2, 3]]);
      const a = model.forward({ inputsEmbeds: embeds, useCache: true, logitsFor: 'last' });
      const lastEmbed = tf.slice(embeds, [0, 2, 0], [1, 1, -1]);
      const b = model.forward({ inputsEmbeds: lastEmbed, cache: a.cache, useCache: true });
      disposeKvCache(a.cache);
      disposeKvCache(b.cache);
      tf.dispose([embeds, lastEmbed, a.logits, b.logits]);
    };
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run();
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
