import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CheckpointFormatError, ParameterStore, Rng, WeightsError, initBackend, tf } from '@bvllm/core';
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  checkpointName,
  latestCheckpoint,
  loadCheckpoint,
  loadTrainedWeights,
  saveCheckpoint,
  type Checkpoint,
} from './checkpoint.js';

beforeAll(async () => {
  await initBackend();
});

function checkpoint(step: number, value: number): Checkpoint {
  return {
    weights: new Map([['head.weight', tf.tensor2d([[value, 2]])]]),
    optimizer: { step, expAvg: new Map([['head.weight', tf.tensor2d([[0.5, -1]])]]), expAvgSq: new Map([['head.weight', tf.tensor2d([[0.25, 1]])]]) },
    state: {
      format: CHECKPOINT_FORMAT,
      version: CHECKPOINT_VERSION,
      stage: 'stage1',
      step,
      totalSteps: 10,
      cursor: 2 * step,
      rng: { seed: 42, stream: 7, counter: 13 },
      lossHistory: Array.from({ length: step }, (_, i) => 2.5 - 0.25 * i),
      skipped: 1,
      run: { seed: 42, microBatchSize: 2, gradientAccumulationSteps: 2, datasetLength: 10 },
    },
  };
}

const dispose = (c: Checkpoint) => tf.dispose([...c.weights.values(), ...c.optimizer.expAvg.values(), ...c.optimizer.expAvgSq.values()]);

describe('trainer checkpoints', () => {
  it('round-trips weights, moments and state exactly; leaves no temporary folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bvllm-ckpt-'));
    const original = checkpoint(3, 1 / 3);
    const path = saveCheckpoint(dir, original);
    expect(path).toBe(join(dir, 'step-00000003'));
    expect(readdirSync(dir)).toEqual(['step-00000003']);
    const loaded = loadCheckpoint(path);
    expect(loaded.state).toEqual(original.state);
    expect(loaded.weights.get('head.weight')!.arraySync()).toEqual(original.weights.get('head.weight')!.arraySync());
    expect(loaded.optimizer.step).toBe(3);
    expect(loaded.optimizer.expAvg.get('head.weight')!.arraySync()).toEqual([[0.5, -1]]);
    expect(loaded.optimizer.expAvgSq.get('head.weight')!.arraySync()).toEqual([[0.25, 1]]);
    dispose(original);
    dispose(loaded);
  });

  it('replaces a checkpoint of the same step and finds the latest by step', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bvllm-ckpt-'));
    for (const [step, value] of [
      [2, 1],
      [10, 2],
      [10, 3],
    ]) {
      const c = checkpoint(step, value);
      saveCheckpoint(dir, c);
      dispose(c);
    }
    expect(readdirSync(dir).sort()).toEqual(['step-00000002', 'step-00000010']);
    expect(latestCheckpoint(dir)).toBe(join(dir, checkpointName(10)));
    const loaded = loadCheckpoint(latestCheckpoint(dir)!);
    expect(loaded.weights.get('head.weight')!.arraySync()).toEqual([[3, 2]]);
    dispose(loaded);
    expect(latestCheckpoint(join(dir, 'absent'))).toBeUndefined();
  });

  it('refuses a folder that is not a checkpoint or of another version, saying which', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bvllm-ckpt-'));
    expect(() => loadCheckpoint(dir)).toThrow(CheckpointFormatError);
    const c = checkpoint(1, 1);
    const path = saveCheckpoint(dir, c);
    dispose(c);
    const statePath = join(path, 'trainer-state.json');
    writeFileSync(statePath, JSON.stringify({ ...JSON.parse(readFileSync(statePath, 'utf8')), version: 99 }));
    expect(() => loadCheckpoint(path)).toThrow(/version 99, this trainer reads version 1/);
    expect(existsSync(join(path, 'trainable.safetensors'))).toBe(true);
  });
});

describe('trainer-state.json is validated field by field (issue #20 item 8)', () => {
  const saved = () => {
    const dir = mkdtempSync(join(tmpdir(), 'bvllm-ckpt-'));
    const c = checkpoint(2, 1);
    const path = saveCheckpoint(dir, c);
    dispose(c);
    return path;
  };
  const edit = (path: string, change: (state: Record<string, any>) => void) => {
    const statePath = join(path, 'trainer-state.json');
    const state = JSON.parse(readFileSync(statePath, 'utf8'));
    change(state);
    writeFileSync(statePath, JSON.stringify(state));
  };

  it.each<[string, (s: Record<string, any>) => void, RegExp]>([
    ['a negative step', (s) => (s.step = -1), /trainer-state\.json: step: Number must be greater than or equal to 0/],
    ['a step as a string', (s) => (s.step = '2'), /step: Expected number, received string/],
    ['a loss history shorter than the steps', (s) => s.lossHistory.pop(), /lossHistory: lossHistory must hold one loss per update done/],
    ['a loss that is text', (s) => (s.lossHistory[0] = 'low'), /lossHistory\.0: Expected number, received string/],
    ['no noise generator', (s) => delete s.rng, /rng: Required/],
    ['a generator seed past 32 bits', (s) => (s.rng.seed = 2 ** 40), /rng\.seed: Number must be less than or equal to 4294967295/],
    ['an unknown stage', (s) => (s.stage = 'stage3'), /stage: Invalid enum value/],
    ['a zero dataset length', (s) => (s.run.datasetLength = 0), /run\.datasetLength: Number must be greater than 0/],
    ['a cursor behind the steps', (s) => (s.cursor = 1), /cursor: cursor \(micro-batches consumed\) is below step/],
    ['an unknown field', (s) => (s.extra = true), /\(root\): Unrecognized key\(s\) in object: 'extra'/],
  ])('refuses %s with a CheckpointFormatError naming the field', (_, change, message) => {
    const path = saved();
    edit(path, change);
    expect(() => loadCheckpoint(path)).toThrow(CheckpointFormatError);
    expect(() => loadCheckpoint(path)).toThrow(message);
  });

  it('reads back a NaN loss (an update whose every sample was skipped), which JSON stores as null', () => {
    const path = saved();
    edit(path, (s) => (s.lossHistory[1] = null));
    const loaded = loadCheckpoint(path);
    expect(loaded.state.lossHistory[0]).toBe(2.5);
    expect(Number.isNaN(loaded.state.lossHistory[1])).toBe(true);
    dispose(loaded);
  });
});

describe('loadTrainedWeights (stage 1 → stage 2 hand-off, spec §10 D8)', () => {
  it('loads the kept keys, leaves the others, and rejects keys the model lacks', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bvllm-ckpt-'));
    const c = checkpoint(4, 9);
    c.weights.set('head.bias', tf.tensor1d([7]));
    const path = saveCheckpoint(dir, c);
    dispose(c);
    const store = new ParameterStore('stage2', Rng.fromSeed(0));
    store.create('head.weight', [1, 2], { kind: 'zeros' });
    store.create('head.bias', [1], { kind: 'zeros' });
    store.create('lora.A', [2, 2], { kind: 'ones' });
    expect(loadTrainedWeights(store, path, (k) => k !== 'head.bias')).toEqual(['head.weight']);
    expect(store.get('head.weight').arraySync()).toEqual([[9, 2]]);
    expect(store.get('head.bias').arraySync()).toEqual([0]); // the "official reset" style: not carried
    expect(store.get('lora.A').arraySync()).toEqual([
      [1, 1],
      [1, 1],
    ]);
    expect(loadTrainedWeights(store, path)).toEqual(['head.bias', 'head.weight']);
    expect(store.get('head.bias').arraySync()).toEqual([7]);
    const small = new ParameterStore('other', Rng.fromSeed(0));
    small.create('head.weight', [1, 2], { kind: 'zeros' });
    const before = tf.memory().numTensors;
    expect(() => loadTrainedWeights(small, path)).toThrow(WeightsError);
    expect(tf.memory().numTensors).toBe(before);
    store.dispose();
    small.dispose();
  });
});
