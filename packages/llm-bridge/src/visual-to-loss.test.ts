// The stage-1 training path end to end (spec §1.1 (e), §1.2, §2): projector → splice → frozen Qwen2 → loss, with
// the gradient reaching the projector through the LLM.
import { fileURLToPath } from 'node:url';
import { Rng, initBackend, tf } from '@bvllm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { causalLmLoss } from './causal-lm-loss.js';
import { IGNORE_INDEX, VIDEO_TOKEN_INDEX } from './constants.js';
import { projectorRegistry, type Projector } from './projector.js';
import { Qwen2Model } from './qwen2-model.js';
import { spliceVisual } from './splice-visual.js';

let model: Qwen2Model;
let projector: Projector;
let spatialTokens: tf.Tensor3D;
const ids = [[12, 40, VIDEO_TOKEN_INDEX, 7, 99, 150, 3]];
const labels = [[IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 7, 99, 150, 3]];

beforeAll(async () => {
  await initBackend();
  model = Qwen2Model.load(fileURLToPath(new URL('../../../../shared/fixtures/qwen2-tiny-s2/', import.meta.url)));
  projector = projectorRegistry.create({ kind: 'linear2' }, { rng: Rng.fromSeed(2), dims: { Cq: 8, Cv: 12, D: 64 } });
  spatialTokens = Rng.fromSeed(3).normal([2, 3, 8]) as tf.Tensor3D;
});
afterAll(() => {
  tf.dispose(spatialTokens);
  projector.dispose();
  model.dispose();
});

const loss = () =>
  tf.tidy(() => {
    const visual = projector.apply({ spatialTokens }, { training: true, rng: Rng.fromSeed(0) });
    const batch = spliceVisual(model, { inputIds: ids, labels, visual: [[visual]] });
    expect(batch.inputsEmbeds.shape).toEqual([1, 6 + 6, 64]);
    const { logits } = model.forward({ inputsEmbeds: batch.inputsEmbeds, attentionMask: batch.attentionMask });
    return causalLmLoss(logits, batch.labels);
  });

describe('projector → splice → Qwen2 → loss', () => {
  it('the gradient reaches the projector and matches finite differences', () => {
    const variables = [...projector.variables().values()];
    const { value, grads } = tf.variableGrads(loss, variables);
    const first = projector.variables().get('vlm_att_projector_spatial.weight')!;
    const analytic = grads[first.name].dataSync();
    let index = 0;
    for (let i = 1; i < analytic.length; i++) if (Math.abs(analytic[i]) > Math.abs(analytic[index])) index = i;
    expect(Math.abs(analytic[index])).toBeGreaterThan(1e-4);
    const values = first.dataSync().slice();
    const at = (delta: number) => {
      const copy = values.slice();
      copy[index] += delta;
      tf.tidy(() => first.assign(tf.tensor(copy, first.shape)));
      const l = loss();
      const out = l.dataSync()[0];
      l.dispose();
      return out;
    };
    const eps = 1e-2;
    const numeric = (at(eps) - at(-eps)) / (2 * eps);
    tf.tidy(() => first.assign(tf.tensor(values, first.shape)));
    expect(Math.abs(numeric - analytic[index])).toBeLessThan(2e-2 * Math.max(1, Math.abs(analytic[index])));
    tf.dispose([value, ...Object.values(grads)]);
  });
});
