import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { initBackend, qformerConfigFromHf, readSafetensors, tf } from '@bvllm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from './graph-builder.js';
import { qformerGraph } from './qformer-graph.js';
import { f32, i64, maxAbsDiff, runGraph } from './test-support.js';

// spec §1.1 (a), (c): the Q-Former both samplers run, against the independent float64 fixture (tolerance 1e-4).
const fixture = fileURLToPath(new URL('../../../../shared/fixtures/qformer/', import.meta.url));
const json = (name: string) => JSON.parse(readFileSync(`${fixture}${name}`, 'utf8'));

describe('qformerGraph', () => {
  let weights: Map<string, tf.Tensor>;
  beforeAll(async () => {
    await initBackend();
    weights = readSafetensors(`${fixture}model.safetensors`);
  });
  afterAll(() => tf.dispose([...weights.values()]));

  function build(allPositions: boolean): GraphBuilder {
    const config = qformerConfigFromHf(json('config.json'));
    const g = new GraphBuilder('qformer');
    const inputIds = g.input('input_ids', 'int64', ['batch', 'text']);
    const attentionMask = g.input('attention_mask', 'int64', ['batch', 'text']);
    const encoderStates = g.input('encoder_hidden_states', 'float32', ['batch', 'encoder', 24]);
    const queries = g.initializerFromTensor('query_tokens', weights.get('query_tokens')!);
    const lookup = (key: string) => weights.get(key)!;
    const out = qformerGraph(g, lookup, '', config, { queries, numQueries: 8, inputIds, attentionMask, encoderStates }, { allPositions });
    g.output('out', 'float32', ['batch', allPositions ? 'positions' : 8, 32], out);
    return g;
  }

  async function run(allPositions: boolean): Promise<Float32Array> {
    const inputs = json('inputs.json');
    const out = await runGraph(build(allPositions), {
      input_ids: i64(inputs.input_ids.flat(), [2, 12]),
      attention_mask: i64(inputs.attention_mask.flat(), [2, 12]),
      encoder_hidden_states: f32(inputs.encoder_hidden_states.flat(2), [2, 10, 24]),
    });
    return out.out.data as Float32Array;
  }

  it('matches the fixture query_output (padded row included) within 1e-4', async () => {
    const expected = json('expected.json').query_output.flat(2) as number[];
    const got = await run(false);
    expect(got.length).toBe(2 * 8 * 32);
    expect(maxAbsDiff(got, expected)).toBeLessThan(1e-4);
  });

  it('matches the fixture last_hidden_state at every non-pad position with allPositions', async () => {
    const expected = json('expected.json').last_hidden_state as number[][][];
    const mask = json('inputs.json').attention_mask as number[][];
    const got = await run(true);
    let worst = 0;
    for (let b = 0; b < 2; b++)
      for (let p = 0; p < 20; p++) {
        if (p >= 8 && mask[b][p - 8] === 0) continue;
        for (let c = 0; c < 32; c++) worst = Math.max(worst, Math.abs(got[(b * 20 + p) * 32 + c] - expected[b][p][c]));
      }
    expect(worst).toBeLessThan(1e-4);
  });
});
