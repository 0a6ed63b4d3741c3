import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { initBackend, tf } from '@bvllm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TfjsDecoder } from './decoder-runtime-tfjs.js';
import { leftPad, positionIdsFromMask } from './decoder-runtime.js';
import { Qwen2Model } from './qwen2-model.js';

const dir = fileURLToPath(new URL('../../../../shared/fixtures/qwen2-tiny-s2/', import.meta.url));
const fixture = JSON.parse(readFileSync(`${dir}expected.json`, 'utf8')) as { input_ids: number[]; last_logits: number[] };
let model: Qwen2Model;
let decoder: TfjsDecoder;

beforeAll(async () => {
  await initBackend();
  model = Qwen2Model.load(dir);
  decoder = TfjsDecoder.of(model);
});
afterAll(() => model.dispose());

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

describe('positionIdsFromMask and leftPad', () => {
  it('cumsum(mask) − 1 with padded slots 1, last L columns (hand-computed)', () => {
    expect(positionIdsFromMask([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], 5)).toEqual([[1, 1, 0, 1, 2], [0, 1, 2, 3, 4]]);
    expect(positionIdsFromMask([[0, 1, 1, 1]], 1)).toEqual([[2]]);
    expect(leftPad([[5, 6], [7]], 0)).toEqual({ padded: [[5, 6], [0, 7]], mask: [[1, 1], [0, 1]] });
  });
});

describe('TfjsDecoder (the CausalDecoder over Qwen2Model, spec §3 decoding)', () => {
  it('prefill over the checkpoint prompt gives the fixture last logits', async () => {
    const ids = fixture.input_ids;
    const { logits, cache } = await decoder.prefill({ inputsEmbeds: await decoder.embed([ids]), batch: 1, length: ids.length });
    expect(maxAbsDiff(logits, fixture.last_logits)).toBeLessThan(1e-4);
    decoder.disposeCache(cache);
  });

  it('a left-padded row gives the logits of the same prompt alone, at prefill and after a step', async () => {
    const long = fixture.input_ids.slice(0, 10);
    const short = fixture.input_ids.slice(3, 7);
    const { padded, mask } = leftPad([long, short]);
    const batch = await decoder.prefill({ inputsEmbeds: await decoder.embed(padded), batch: 2, length: 10, attentionMask: mask });
    const alone = await decoder.prefill({ inputsEmbeds: await decoder.embed([short]), batch: 1, length: 4 });
    expect(maxAbsDiff(batch.logits.subarray(300), alone.logits)).toBeLessThan(1e-5);
    const stepBatch = await decoder.step(batch.cache, [11, 22]);
    const stepAlone = await decoder.step(alone.cache, [22]);
    expect(maxAbsDiff(stepBatch.logits.subarray(300), stepAlone.logits)).toBeLessThan(1e-5);
    const kept = decoder.select(stepBatch.cache, [1]);
    const after = await decoder.step(kept, [33]);
    const afterAlone = await decoder.step(stepAlone.cache, [33]);
    expect(maxAbsDiff(after.logits, afterAlone.logits)).toBeLessThan(1e-5);
    decoder.disposeCache(after.cache);
    decoder.disposeCache(afterAlone.cache);
  });

  it('prefill, step, select and dispose leak no tensors', async () => {
    const run = async () => {
      const { padded, mask } = leftPad([fixture.input_ids.slice(0, 6), fixture.input_ids.slice(0, 3)]);
      const first = await decoder.prefill({ inputsEmbeds: await decoder.embed(padded), batch: 2, length: 6, attentionMask: mask });
      const second = await decoder.step(first.cache, [1, 2]);
      const kept = decoder.select(second.cache, [0]);
      const third = await decoder.step(kept, [3]);
      decoder.disposeCache(third.cache);
    };
    await run();
    const before = tf.memory().numTensors;
    await run();
    await run();
    expect(tf.memory().numTensors).toBe(before);
  });
});
