import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from './backend.js';
import { CHECKPOINT_FORMAT_VERSION, loadCheckpoint, loadStage, readCheckpointManifest, saveCheckpoint, saveStage } from './checkpoint.js';
import { CheckpointFormatError, WeightsError } from './errors.js';
import { tensorGrowth } from './memory.js';
import { ParameterStore } from './parameter-store.js';
import { Rng } from './random.js';
import { writeSafetensors } from './safetensors/write.js';
import type { Stage } from './stage.js';

let root: string;
beforeAll(async () => {
  await initBackend();
  root = mkdtempSync(join(tmpdir(), 'bvllm-checkpoint-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A minimal stage: a scaled projection with a store of variables. */
function toyStage(kind: string, width: number): Stage<{ kind: string; width: number }, tf.Tensor, tf.Tensor> {
  const store = new ParameterStore(kind, Rng.fromSeed(width));
  store.create('proj.weight', [width, 2], { kind: 'normal', std: 1 });
  store.create('proj.bias', [width], { kind: 'normal', std: 1 });
  return {
    kind,
    config: { kind, width },
    apply: (x) => tf.add(tf.matMul(x, store.get('proj.weight'), false, true), store.get('proj.bias')),
    variables: () => new Map(store.entries()),
    loadWeights: (tensors) => store.load(tensors),
    dispose: () => store.dispose(),
  };
}

const manifestPath = (dir: string) => join(dir, 'checkpoint.json');
const editManifest = (dir: string, edit: (m: Record<string, unknown>) => void) => {
  const manifest = JSON.parse(readFileSync(manifestPath(dir), 'utf8'));
  edit(manifest);
  writeFileSync(manifestPath(dir), JSON.stringify(manifest));
};

describe('checkpoints', () => {
  it('round-trips a stage: kind, config, every variable bit for bit', () => {
    const dir = join(root, 'round-trip');
    const saved = toyStage('toy', 3);
    saveStage(dir, saved);
    expect(readdirSync(dir).sort()).toEqual(['checkpoint.json', 'weights.safetensors']);
    const manifest = readCheckpointManifest(dir);
    expect(manifest).toEqual({
      format: 'bvllm-checkpoint',
      formatVersion: CHECKPOINT_FORMAT_VERSION,
      kind: 'toy',
      config: { kind: 'toy', width: 3 },
      tensors: { 'proj.weight': [3, 2], 'proj.bias': [3] },
    });
    const restored = toyStage('toy', 3);
    restored.variables().get('proj.bias')!.assign(tf.zeros([3]));
    loadStage(dir, restored);
    for (const [k, v] of saved.variables()) expect(Array.from(restored.variables().get(k)!.dataSync()), k).toEqual(Array.from(v.dataSync()));
    const x = tf.tensor2d([[1, -1]]);
    expect(Array.from(restored.apply(x, { training: false, rng: Rng.fromSeed(0) }).dataSync())).toEqual(
      Array.from(saved.apply(x, { training: false, rng: Rng.fromSeed(0) }).dataSync()),
    );
    saved.dispose();
    restored.dispose();
  });

  it('overwrites an existing checkpoint atomically and leaves no temp folders', () => {
    const dir = join(root, 'overwrite');
    saveCheckpoint(dir, { kind: 'a', config: { n: 1 }, tensors: new Map([['w', { values: [1], shape: [1] }]]) });
    saveCheckpoint(dir, { kind: 'a', config: { n: 2 }, tensors: new Map([['w', { values: [2, 3], shape: [2] }]]) });
    const { config, tensors } = loadCheckpoint(dir, { kind: 'a' });
    expect(config).toEqual({ n: 2 });
    expect(Array.from(tensors.get('w')!.dataSync())).toEqual([2, 3]);
    tf.dispose([...tensors.values()]);
    expect(readdirSync(root).filter((n) => n.includes('.tmp-') || n.includes('.old-'))).toEqual([]);
  });

  it('a failed write leaves the previous checkpoint in place', () => {
    const dir = join(root, 'failed-write');
    saveCheckpoint(dir, { kind: 'a', config: {}, tensors: new Map([['w', { values: [1], shape: [1] }]]) });
    const bad = { get shape() { throw new Error('boom'); } } as unknown as tf.Tensor;
    expect(() => saveCheckpoint(dir, { kind: 'a', config: {}, tensors: new Map([['w', bad]]) })).toThrow('boom');
    expect(readCheckpointManifest(dir).tensors).toEqual({ w: [1] });
  });

  it('refuses a folder that is not a checkpoint', () => {
    expect(() => loadCheckpoint(join(root, 'absent'))).toThrow(CheckpointFormatError);
    expect(() => loadCheckpoint(join(root, 'absent'))).toThrow('not a readable checkpoint manifest');
  });

  it.each([
    ['another format', (m: Record<string, unknown>) => (m.format = 'hf-peft'), 'format is "hf-peft", expected "bvllm-checkpoint"'],
    ['a newer format version', (m: Record<string, unknown>) => (m.formatVersion = 2), 'format version 2, this @bvllm/core reads version 1'],
    ['a malformed tensor table', (m: Record<string, unknown>) => (m.tensors = { w: [-1] }), 'tensors.w.0:'],
    ['an unknown manifest field', (m: Record<string, unknown>) => (m.extra = true), "Unrecognized key(s) in object: 'extra'"],
  ])('refuses %s with CheckpointFormatError', (_, edit, message) => {
    const dir = join(root, `refuse-${_.replace(/\W/g, '-')}`);
    saveCheckpoint(dir, { kind: 'toy', config: {}, tensors: new Map([['w', { values: [1, 2], shape: [2] }]]) });
    editManifest(dir, edit);
    const attempt = () => loadCheckpoint(dir);
    expect(attempt).toThrow(CheckpointFormatError);
    expect(attempt).toThrow(message);
  });

  it('refuses another kind, naming both', () => {
    const dir = join(root, 'kind');
    saveStage(dir, toyStage('uniform', 2));
    const stage = toyStage('gumbel', 2);
    expect(() => loadStage(dir, stage)).toThrow(CheckpointFormatError);
    expect(() => loadStage(dir, stage)).toThrow('holds kind "uniform", expected "gumbel"');
    stage.dispose();
  });

  it('refuses shapes that do not fit the model with one WeightsError, before reading weights', () => {
    const dir = join(root, 'shapes');
    saveStage(dir, toyStage('toy', 3));
    const wider = toyStage('toy', 4);
    const tensorsBefore = tf.memory().numTensors;
    let error: WeightsError | undefined;
    try {
      loadStage(dir, wider);
    } catch (e) {
      error = e as WeightsError;
    }
    expect(error).toBeInstanceOf(WeightsError);
    expect(error!.misshaped).toEqual([
      { key: 'proj.weight', expected: [4, 2], actual: [3, 2] },
      { key: 'proj.bias', expected: [4], actual: [3] },
    ]);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    wider.dispose();
  });

  it('refuses a weights file that disagrees with its manifest', () => {
    const dir = join(root, 'disagree');
    saveCheckpoint(dir, { kind: 'toy', config: {}, tensors: new Map([['w', { values: [1, 2], shape: [2] }]]) });
    writeSafetensors(join(dir, 'weights.safetensors'), new Map([['w', { values: [1, 2], shape: [1, 2] }]]));
    expect(() => loadCheckpoint(dir)).toThrow('tensor "w" is [1, 2] but checkpoint.json says [2]');
    writeSafetensors(join(dir, 'weights.safetensors'), new Map([['v', { values: [1, 2], shape: [2] }]]));
    expect(() => loadCheckpoint(dir)).toThrow('1 listed key(s) absent [w], 1 unlisted key(s) present [v]');
    rmSync(join(dir, 'weights.safetensors'));
    expect(existsSync(manifestPath(dir))).toBe(true);
    expect(() => loadCheckpoint(dir)).toThrow('cannot open');
  });

  it('a tensor that cannot be read fails the load without leaking the ones read before it', () => {
    const dir = join(root, 'unreadable');
    saveCheckpoint(dir, {
      kind: 'toy',
      config: {},
      tensors: new Map<string, { values: ArrayLike<number>; shape: number[] }>([
        ['a', { values: [1, 2], shape: [2] }],
        ['b', { values: Int32Array.of(0), shape: [1] }],
      ]),
    });
    // Patch b's int64 to 2⁴⁰, which tfjs's int32 cannot hold.
    const weights = readFileSync(join(dir, 'weights.safetensors'));
    weights.writeBigInt64LE(2n ** 40n, weights.length - 8);
    writeFileSync(join(dir, 'weights.safetensors'), weights);
    const before = tf.memory().numTensors;
    expect(() => loadCheckpoint(dir)).toThrow('tensor "b" holds 1099511627776, outside int32');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('save and load do not leak', () => {
    const dir = join(root, 'leak');
    const stage = toyStage('toy', 2);
    expect(
      tensorGrowth(() => {
        saveStage(dir, stage);
        loadStage(dir, stage);
      }),
    ).toBe(0);
    stage.dispose();
  });
});
