import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend.js';
import { ConfigError, InvalidArgumentError, ShapeError, WeightsError } from '../errors.js';
import { applyKeyRules } from '../key-rules.js';
import { ParameterStore } from '../parameter-store.js';
import { Rng } from '../random.js';
import { readSafetensors } from '../safetensors/safetensors-file.js';
import { QFormer, instructBlipQFormerConfig, qformerConfigFromHf, qformerConfigSchema } from './qformer.js';
import { hfQFormerKeys, lavisQFormerKeys } from './qformer-keys.js';

const dir = fileURLToPath(new URL('../../../../../shared/fixtures/qformer/', import.meta.url));
const json = (name: string) => JSON.parse(readFileSync(dir + name, 'utf8'));
const hfConfig = json('config.json');
const inputs = json('inputs.json');
const expected = json('expected.json');

/** Max |a − b| over two nested arrays of equal shape. */
function maxAbsDiff(a: tf.Tensor, b: unknown): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, tf.tensor(b as number[], a.shape)))).dataSync()[0]);
}

function build(): { store: ParameterStore; qformer: QFormer } {
  const store = new ParameterStore('qformer', Rng.fromSeed(1));
  const qformer = new QFormer(store, '', qformerConfigFromHf(hfConfig));
  return { store, qformer };
}

function fixtureWeights(): { body: Map<string, tf.Tensor>; queryTokens: tf.Tensor } {
  const all = readSafetensors(dir + 'model.safetensors');
  const queryTokens = all.get('query_tokens')!;
  all.delete('query_tokens');
  return { body: all, queryTokens };
}

describe('QFormer (spec §1.1 (a), (c); HF InstructBlipQFormerModel)', () => {
  let store: ParameterStore;
  let qformer: QFormer;
  let queryTokens: tf.Tensor;
  let feed: { inputIds: tf.Tensor; attentionMask: tf.Tensor; encoderHiddenStates: tf.Tensor; encoderAttentionMask: tf.Tensor };

  beforeAll(async () => {
    await initBackend();
    ({ store, qformer } = build());
    const w = fixtureWeights();
    store.load(w.body);
    w.body.forEach((t) => t.dispose());
    queryTokens = w.queryTokens;
    feed = {
      inputIds: tf.tensor2d(inputs.input_ids, undefined, 'int32'),
      attentionMask: tf.tensor2d(inputs.attention_mask, undefined, 'int32'),
      encoderHiddenStates: tf.tensor3d(inputs.encoder_hidden_states),
      encoderAttentionMask: tf.tensor2d(inputs.encoder_attention_mask, undefined, 'int32'),
    };
  });

  it('reads the HF config fields', () => {
    expect(qformerConfigFromHf(hfConfig)).toEqual({
      hiddenSize: 32, numLayers: 4, numHeads: 2, intermediateSize: 64, vocabSize: 100, maxPositions: 64,
      encoderHiddenSize: 24, crossAttentionFrequency: 2, layerNormEps: 1e-12, hiddenAct: 'gelu',
    });
    expect(qformerConfigFromHf({})).toEqual(instructBlipQFormerConfig);
    expect(() => qformerConfigFromHf({ hidden_size: 30, num_attention_heads: 4 })).toThrow(ConfigError);
    expect(() => qformerConfigFromHf({ position_embedding_type: 'relative_key' })).toThrow(ConfigError);
  });

  it('the strict stage-side schema defaults to InstructBLIP and rejects typos', () => {
    const { encoderHiddenSize: _, ...rest } = instructBlipQFormerConfig;
    expect(qformerConfigSchema.parse({})).toEqual(rest);
    expect(qformerConfigSchema.safeParse({ hidden_size: 768 }).success).toBe(false);
    expect(qformerConfigSchema.safeParse({ hiddenSize: 30, numHeads: 4 }).success).toBe(false);
  });

  it('creates exactly the HF keys: cross-attention only in layers 0 and 2', () => {
    const all = readSafetensors(dir + 'model.safetensors');
    const fixtureKeys = [...all.keys()].filter((k) => k !== 'query_tokens').sort();
    all.forEach((t) => t.dispose());
    expect(store.keys().sort()).toEqual(fixtureKeys);
    expect(store.keys().filter((k) => k.includes('crossattention.attention.query.weight'))).toEqual([
      'encoder.layer.0.crossattention.attention.query.weight',
      'encoder.layer.2.crossattention.attention.query.weight',
    ]);
  });

  it('matches the fixture: embeddings, every layer and the last hidden state within 1e-4', () => {
    const out = qformer.forward({ queryEmbeds: queryTokens, ...feed }, { intermediates: true });
    expect(out.lastHiddenState.shape).toEqual([2, 20, 32]);
    expect(maxAbsDiff(out.embeddingOutput!, expected.embedding_output)).toBeLessThan(1e-4);
    out.layerOutputs!.forEach((layer, i) => expect(maxAbsDiff(layer, expected.layer_outputs[i])).toBeLessThan(1e-4));
    // Row 1's pad rows are optional in the fixture; compare all of row 0 and the 16 real positions of row 1.
    const real = tf.slice(out.lastHiddenState, [1, 0, 0], [1, 16, 32]);
    const expectedReal = (expected.last_hidden_state[1] as number[][]).slice(0, 16);
    expect(maxAbsDiff(real, [expectedReal])).toBeLessThan(1e-4);
    const row0 = tf.slice(out.lastHiddenState, [0, 0, 0], [1, 20, 32]);
    expect(maxAbsDiff(row0, [expected.last_hidden_state[0]])).toBeLessThan(1e-4);
    tf.dispose([out.lastHiddenState, out.embeddingOutput!, ...out.layerOutputs!, real, row0]);
  });

  it('queryOutput is the first Q positions', () => {
    const q = qformer.queryOutput({ queryEmbeds: queryTokens, ...feed });
    expect(q.shape).toEqual([2, 8, 32]);
    expect(maxAbsDiff(q, expected.query_output)).toBeLessThan(1e-4);
    q.dispose();
  });

  it('padding never reaches the other positions: padded row 1 equals the same 8 tokens unpadded', () => {
    const ids = tf.tensor2d([inputs.input_ids[1].slice(0, 8)], undefined, 'int32');
    const mask = tf.ones([1, 8], 'int32');
    const states = tf.slice(feed.encoderHiddenStates, [1, 0, 0], [1, 10, 24]);
    const q = qformer.queryOutput({ queryEmbeds: queryTokens, inputIds: ids, attentionMask: mask, encoderHiddenStates: states });
    expect(maxAbsDiff(q, [expected.query_output[1]])).toBeLessThan(1e-4);
    tf.dispose([ids, mask, states, q]);
  });

  it('does not leak tensors over repeated runs', () => {
    const run = () => qformer.queryOutput({ queryEmbeds: queryTokens, ...feed }).dispose();
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects wrong shapes with typed errors', () => {
    const badStates = tf.zeros([2, 10, 23]);
    expect(() => qformer.forward({ queryEmbeds: queryTokens, ...feed, encoderHiddenStates: badStates })).toThrow(ShapeError);
    const longIds = tf.zeros([1, 65], 'int32');
    const longMask = tf.ones([1, 65], 'int32');
    const states = tf.zeros([1, 3, 24]);
    expect(() => qformer.forward({ queryEmbeds: queryTokens, inputIds: longIds, attentionMask: longMask, encoderHiddenStates: states })).toThrow(InvalidArgumentError);
    tf.dispose([badStates, longIds, longMask, states]);
  });

  it('is differentiable: every parameter upstream of the query output gets a gradient', () => {
    const variables = store.entries();
    const { value, grads } = tf.variableGrads(
      () => tf.sum(qformer.queryOutput({ queryEmbeds: queryTokens, ...feed })) as tf.Scalar,
      variables.map(([, v]) => v),
    );
    const zero = variables.filter(([, v]) => tf.tidy(() => tf.max(tf.abs(grads[v.name])).dataSync()[0]) === 0).map(([k]) => k);
    // The last layer's text FFN feeds only text positions, which the query output never reads.
    expect(zero.sort()).toEqual(
      ['intermediate.dense.weight', 'intermediate.dense.bias', 'output.dense.weight', 'output.dense.bias', 'output.LayerNorm.weight', 'output.LayerNorm.bias']
        .map((k) => `encoder.layer.3.${k}`)
        .sort(),
    );
    // Rows of unpadded ids move; every other row, the pad id's included, does not (the scatter-add gradient).
    const used = new Set<number>((inputs.input_ids as number[][]).flatMap((row, b) => row.filter((_, j) => inputs.attention_mask[b][j] === 1)));
    const rowMoved = tf.tidy(() => tf.max(tf.abs(grads[store.get('embeddings.word_embeddings.weight').name]), 1).arraySync() as number[]);
    rowMoved.forEach((m, id) => expect(m > 0).toBe(used.has(id)));
    tf.dispose([value, ...Object.values(grads)]);
  });

  it('is strict about checkpoint keys', () => {
    const { store: fresh } = build();
    const w = fixtureWeights();
    w.body.delete('encoder.layer.1.output_query.dense.bias');
    w.body.set('encoder.layer.1.crossattention.attention.query.weight', tf.zeros([32, 32]));
    expect(() => fresh.load(w.body)).toThrow(WeightsError);
    w.body.forEach((t) => t.dispose());
    w.queryTokens.dispose();
    fresh.dispose();
  });
});

describe('Q-Former key tables', () => {
  it('maps every LAVIS name onto a distinct HF parameter and leaves no rule unused', () => {
    const { store } = build();
    const lavisName = (k: string) =>
      'Qformer.bert.' +
      k.replace('embeddings.layernorm', 'embeddings.LayerNorm').replace(/(attention|crossattention)\.attention\.(query|key|value)/, '$1.self.$2');
    const source = new Map<string, tf.Tensor>(store.keys().map((k) => [lavisName(k), tf.zeros([1])]));
    source.set('Qformer.bert.embeddings.position_ids', tf.zeros([1]));
    source.set('Qformer.cls.predictions.bias', tf.zeros([1]));
    const rules = lavisQFormerKeys('Qformer', 'vlm_att_encoder_temporal.');
    const { tensors, usedRules } = applyKeyRules(source, rules);
    expect([...tensors.keys()].sort()).toEqual(store.keys().map((k) => `vlm_att_encoder_temporal.${k}`).sort());
    expect(usedRules.size).toBe(rules.length);
    tensors.forEach((t) => t.dispose());
    store.dispose();
  });

  it('moves the HF `qformer.` prefix and drops position_ids', () => {
    const source = new Map<string, tf.Tensor>([
      ['qformer.embeddings.layernorm.weight', tf.zeros([1])],
      ['qformer.embeddings.position_ids', tf.zeros([1])],
    ]);
    const rules = hfQFormerKeys('qformer', 'vlm_att_encoder_spatial.');
    const { tensors, usedRules } = applyKeyRules(source, rules);
    expect([...tensors.keys()]).toEqual(['vlm_att_encoder_spatial.embeddings.layernorm.weight']);
    expect(usedRules.size).toBe(2);
    tensors.forEach((t) => t.dispose());
  });
});
