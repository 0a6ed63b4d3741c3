import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { AbortedError, BvllmError, CheckpointFormatError, Linear, ParameterStore, Rng, initBackend, readSafetensors, tf, type StageContext } from '@bvllm/core';
import { DataOrder, totalStepsFor, train, type LoopConfig } from './train-loop.js';
import type { TrainableModel, TrainDataset } from './trainable-model.js';

interface Sample {
  x: number[];
  y: number;
}
interface Batch {
  x: tf.Tensor2D;
  y: tf.Tensor1D;
}

/**
 * A real two-layer classifier: a frozen "encoder" Linear(4→4) with ReLU and a trainable head Linear(4→3), with
 * Gaussian input noise drawn from context.rng in training (standing in for Gumbel noise), softmax cross-entropy.
 */
class TinyClassifier implements TrainableModel<Batch> {
  readonly store: ParameterStore;
  private readonly encoder: Linear;
  private readonly head: Linear;

  constructor(seed: number) {
    this.store = new ParameterStore('tiny', Rng.fromSeed(seed));
    this.encoder = new Linear(this.store, 'encoder', 4, 4);
    this.head = new Linear(this.store, 'head', 4, 3);
  }

  trainable() {
    return (key: string) => key.startsWith('head.');
  }

  loss(batch: Batch, context: StageContext): tf.Scalar {
    return tf.tidy(() => {
      const noise = context.rng.normal(batch.x.shape, 0.1);
      const h = tf.relu(this.encoder.apply(tf.add(batch.x, noise)));
      const logits = this.head.apply(h);
      return tf.losses.softmaxCrossEntropy(tf.oneHot(batch.y, 3), logits) as tf.Scalar;
    });
  }
}

function makeData(n: number): Sample[] {
  const rng = Rng.fromSeed(7);
  return Array.from({ length: n }, (_, i) => {
    const y = i % 3;
    const x = Array.from(rng.normalArray(4), (v, j) => v * 0.3 + (j === y ? 2 : 0));
    return { x, y };
  });
}

function dataset(samples: Sample[], bad: ReadonlySet<number> = new Set()): TrainDataset<Sample> {
  return {
    length: samples.length,
    get(i) {
      if (bad.has(i)) throw new Error(`missing media file clip-${i}.mp4`);
      return samples[i];
    },
    idOf: (i) => `sample-${i}`,
  };
}

const collate = (samples: Sample[]): Batch => ({
  x: tf.tensor2d(samples.map((s) => s.x)),
  y: tf.tensor1d(samples.map((s) => s.y), 'int32'),
});

const config: LoopConfig = {
  stage: 'stage1',
  seed: 42,
  epochs: 3,
  lr: 0.05,
  schedule: 'linear',
  warmupRatio: 0.2,
  weightDecay: 0.01,
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEps: 1e-8,
  maxGradNorm: 1,
  microBatchSize: 2,
  gradientAccumulationSteps: 2,
  checkpointEvery: 2,
  logEvery: 1,
};

const quiet = () => {
  const lines: string[] = [];
  return { sink: { isTTY: false, write: (t: string) => lines.push(t) }, lines };
};
const tempDir = () => mkdtempSync(join(tmpdir(), 'bvllm-trainer-'));

beforeAll(async () => {
  await initBackend();
});

describe('DataOrder', () => {
  it('each epoch is a seeded permutation; the same cursor gives the same micro-batch', () => {
    const order = new DataOrder(42, 5, 2);
    expect(order.microPerEpoch).toBe(3);
    const epoch0 = [0, 1, 2].flatMap((c) => order.microBatch(c).indices);
    const epoch1 = [3, 4, 5].flatMap((c) => order.microBatch(c).indices);
    expect([...epoch0].sort()).toEqual([0, 1, 2, 3, 4]);
    expect([...epoch1].sort()).toEqual([0, 1, 2, 3, 4]);
    expect(epoch0).not.toEqual(epoch1);
    expect(new DataOrder(42, 5, 2).microBatch(4)).toEqual(order.microBatch(4));
    expect(order.microBatch(4).epoch).toBe(1);
  });

  it('counts updates as HF: ceil(epochs · max(1, floor(ceil(N / micro) / accumulation)))', () => {
    expect(totalStepsFor(config, 10)).toBe(6); // 5 micro-batches → 2 updates per epoch × 3
    expect(totalStepsFor({ ...config, epochs: 1 }, 3)).toBe(1);
    expect(totalStepsFor({ ...config, maxSteps: 11 }, 10)).toBe(11);
  });
});

describe('train', () => {
  const samples = makeData(10);

  it('learns, keeps frozen parameters frozen, logs metrics and progress, writes checkpoints and the curve', async () => {
    const model = new TinyClassifier(1);
    const encoderBefore = model.store.snapshot((k) => k.startsWith('encoder.'));
    const headBefore = model.store.get('head.weight').arraySync();
    const { sink, lines } = quiet();
    const outDir = tempDir();
    const tensorsBefore = tf.memory().numTensors;
    const result = await train({ model, dataset: dataset(samples), collate, config: { ...config, epochs: 10 }, outDir, progress: sink });
    expect(tf.memory().numTensors).toBe(tensorsBefore);

    expect(result.step).toBe(20);
    expect(result.lossHistory).toHaveLength(20);
    const early = (result.lossHistory[0] + result.lossHistory[1]) / 2;
    const late = (result.lossHistory[18] + result.lossHistory[19]) / 2;
    expect(late).toBeLessThan(early * 0.8);

    for (const [k, t] of encoderBefore) expect(model.store.get(k).arraySync()).toEqual(t.arraySync());
    expect(model.store.get('head.weight').arraySync()).not.toEqual(headBefore);
    tf.dispose([...encoderBefore.values()]);

    const metrics = readFileSync(join(outDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics).toHaveLength(20);
    expect(metrics[0]).toMatchObject({ step: 1, lr: 0 }); // HF warm-up: the first update runs at lr 0
    expect(metrics[4].lr).toBeCloseTo(0.05, 10); // warm-up ceil(20 · 0.2) = 4 updates
    expect(metrics[19].loss).toBeCloseTo(result.lossHistory[19], 12);
    expect(lines.some((l) => /20\/20 loss \d+\.\d{4} lr .* samples\/s ETA 00:00:00/.test(l))).toBe(true);

    const saved = readdirSync(outDir).filter((n) => n.startsWith('step-'));
    expect(saved).toHaveLength(10);
    const weights = readSafetensors(join(result.checkpoint!, 'trainable.safetensors'));
    expect([...weights.keys()].sort()).toEqual(['head.bias', 'head.weight']); // frozen keys are not saved
    expect(Array.from(weights.get('head.weight')!.dataSync())).toEqual(Array.from(model.store.get('head.weight').dataSync()));
    tf.dispose([...weights.values()]);
    expect(existsSync(result.lossCurve!)).toBe(true);
    expect(readFileSync(result.lossCurve!).subarray(1, 4).toString()).toBe('PNG');
    model.store.dispose();
  });

  it("tells collate each micro-batch's cursor, the same numbers after a resume as in one run", async () => {
    const seen = (cursors: number[]) => (batch: Sample[], at: { cursor: number }) => {
      cursors.push(at.cursor);
      return collate(batch);
    };
    const straight: number[] = [];
    const model = new TinyClassifier(1);
    await train({ model, dataset: dataset(samples), collate: seen(straight), config, outDir: tempDir(), progress: quiet().sink });
    const outDir = tempDir();
    const resumed: number[] = [];
    await train({ model, dataset: dataset(samples), collate: seen(resumed), config, outDir, stopAtStep: 2, progress: quiet().sink });
    await train({ model, dataset: dataset(samples), collate: seen(resumed), config, outDir, resume: 'latest', progress: quiet().sink });
    expect(straight).toEqual([...straight.keys()]);
    expect(resumed).toEqual(straight);
    model.store.dispose();
  });

  it('a run stopped and resumed reaches the same losses and weights as an uninterrupted one', async () => {
    const straight = new TinyClassifier(1);
    const a = await train({ model: straight, dataset: dataset(samples), collate, config, outDir: tempDir(), progress: quiet().sink });

    const outDir = tempDir();
    const first = new TinyClassifier(1);
    const partial = await train({ model: first, dataset: dataset(samples), collate, config, outDir, stopAtStep: 3, progress: quiet().sink });
    expect(partial.step).toBe(3);
    expect(partial.lossCurve).toBeUndefined();
    first.store.dispose();
    // A fresh process: same frozen init, trainable weights from the checkpoint (a different init would be overwritten).
    const second = new TinyClassifier(1);
    const b = await train({ model: second, dataset: dataset(samples), collate, config, outDir, resume: 'latest', progress: quiet().sink });

    expect(b.step).toBe(6);
    expect(b.lossHistory).toHaveLength(6);
    b.lossHistory.forEach((loss, i) => expect(Math.abs(loss - a.lossHistory[i])).toBeLessThan(1e-6));
    const wa = straight.store.get('head.weight').dataSync();
    const wb = second.store.get('head.weight').dataSync();
    wa.forEach((v, i) => expect(Math.abs(v - wb[i])).toBeLessThan(1e-6));
    straight.store.dispose();
    second.store.dispose();
  });

  it('skips, counts and logs bad samples without stopping the run', async () => {
    const model = new TinyClassifier(1);
    const outDir = tempDir();
    const { sink, lines } = quiet();
    const result = await train({ model, dataset: dataset(samples, new Set([3])), collate, config, outDir, progress: sink });
    expect(result.step).toBe(6);
    const order = new DataOrder(config.seed, 10, 2);
    const appearances = Array.from({ length: 12 }, (_, c) => order.microBatch(c).indices.filter((i) => i === 3).length).reduce((a, b) => a + b);
    expect(appearances).toBeGreaterThan(0);
    expect(result.skipped).toBe(appearances);
    const skipped = readFileSync(join(outDir, 'skipped.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(skipped).toHaveLength(appearances);
    expect(skipped[0]).toMatchObject({ index: 3, id: 'sample-3', reason: 'missing media file clip-3.mp4' });
    expect(lines.some((l) => l.includes('skipped sample sample-3'))).toBe(true);
    expect(result.lossHistory.every(Number.isFinite)).toBe(true);
    model.store.dispose();
  });

  it('skips a sample whose collation fails (an undecodable video), keeping the rest of its micro-batch', async () => {
    const model = new TinyClassifier(1);
    const outDir = tempDir();
    const decoding = (s: Sample[]): Batch => {
      if (s.includes(samples[5])) throw new BvllmError('VIDEO_DECODE', 'clip-5.mp4: truncated moov atom');
      return collate(s);
    };
    const tensorsBefore = tf.memory().numTensors;
    const result = await train({ model, dataset: dataset(samples), collate: decoding, config, outDir, progress: quiet().sink });
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(result.step).toBe(6);
    // 6 updates × 2 micro-batches read 12 micro-batches of the stream; count where sample 5 falls in them.
    const order = new DataOrder(config.seed, 10, 2);
    const appearances = Array.from({ length: 12 }, (_, c) => order.microBatch(c).indices.filter((i) => i === 5).length).reduce((a, b) => a + b);
    expect(appearances).toBeGreaterThan(0);
    expect(result.skipped).toBe(appearances);
    const skipped = readFileSync(join(outDir, 'skipped.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(skipped.map((s) => s.id)).toEqual(Array(appearances).fill('sample-5'));
    // Other errors are bugs, not bad samples: they stop the run.
    const broken = () => {
      throw new TypeError('cannot read properties of undefined');
    };
    await expect(train({ model, dataset: dataset(samples), collate: broken, config, outDir: tempDir(), progress: quiet().sink })).rejects.toThrow(TypeError);
    model.store.dispose();
  });

  it('saves a checkpoint and throws AbortedError when aborted', async () => {
    const model = new TinyClassifier(1);
    const outDir = tempDir();
    const controller = new AbortController();
    const progress = { isTTY: false, write: (t: string) => (t.includes(' 2/6 ') ? controller.abort() : undefined) };
    await expect(train({ model, dataset: dataset(samples), collate, config, outDir, signal: controller.signal, progress })).rejects.toThrow(AbortedError);
    expect(readdirSync(outDir)).toContain('step-00000002');
    model.store.dispose();
  });

  it('leaves batch tensors that outlive the step to a custom disposeBatch', async () => {
    const model = new TinyClassifier(1);
    const cached = samples.map((s) => tf.tensor1d(s.x));
    // The batch carries the cached tensors themselves, which the default tf.dispose(batch) would free.
    const cachedCollate = (s: Sample[]): Batch & { features: tf.Tensor[] } => ({ ...collate(s), features: s.map((one) => cached[samples.indexOf(one)]) });
    const disposed: Batch[] = [];
    const result = await train({
      model,
      dataset: dataset(samples),
      collate: cachedCollate,
      disposeBatch: (b) => {
        disposed.push(b);
        tf.dispose([b.x, b.y]);
      },
      config,
      outDir: tempDir(),
      progress: quiet().sink,
    });
    expect(disposed).toHaveLength(result.step * config.gradientAccumulationSteps);
    expect(cached.every((t) => !t.isDisposed)).toBe(true);
    tf.dispose(cached);
    model.store.dispose();
  });

  it('rejects an empty dataset', async () => {
    const model = new TinyClassifier(1);
    await expect(train({ model, dataset: dataset([]), collate, config, outDir: tempDir(), progress: quiet().sink })).rejects.toThrow(/at least one sample/);
    model.store.dispose();
  });

  it('refuses to resume a checkpoint of a different run', async () => {
    const outDir = tempDir();
    const model = new TinyClassifier(1);
    await train({ model, dataset: dataset(samples), collate, config, outDir, stopAtStep: 2, progress: quiet().sink });
    await expect(
      train({ model, dataset: dataset(samples), collate, config: { ...config, seed: 1 }, outDir, resume: 'latest', progress: quiet().sink }),
    ).rejects.toThrow(CheckpointFormatError);
    model.store.dispose();
  });
});

describe('train: what interrupted runs leave behind (issue #20 item 8)', () => {
  const samples = makeData(10);
  const run = (model: TinyClassifier, outDir: string, extra: { resume?: string; stopAtStep?: number } = {}, progress = quiet()) =>
    train({ model, dataset: dataset(samples), collate, config, outDir, progress: progress.sink, ...extra });

  it('metrics.jsonl holds exactly one line per update after resuming from a checkpoint older than the last logged update', async () => {
    const outDir = tempDir();
    const first = new TinyClassifier(1);
    // Updates 1–3 are logged, but the process "dies" before update 3's checkpoint lands: only step-2 survives.
    await run(first, outDir, { stopAtStep: 3 });
    first.store.dispose();
    rmSync(join(outDir, 'step-00000003'), { recursive: true });
    // A kill mid-append leaves half a line too.
    appendFileSync(join(outDir, 'metrics.jsonl'), '{"step": 4, "lo');
    const second = new TinyClassifier(1);
    const result = await run(second, outDir, { resume: 'latest' });
    second.store.dispose();
    expect(result.resumedFrom).toBe(join(outDir, 'step-00000002'));
    const steps = readFileSync(join(outDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
    expect(steps).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('removes the temporary folders of a save that never finished, and restores a checkpoint it had moved aside', async () => {
    const outDir = tempDir();
    const first = new TinyClassifier(1);
    await run(first, outDir, { stopAtStep: 2 });
    first.store.dispose();
    // A PID that no longer runs: a child that has exited.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    mkdirSync(join(outDir, `.step-00000004.tmp-${dead}`));
    writeFileSync(join(outDir, `.step-00000004.tmp-${dead}`, 'trainable.safetensors'), 'half');
    // The save of step 2 again had moved step-00000002 aside when it died: that copy is the only one left.
    renameSync(join(outDir, 'step-00000002'), join(outDir, `.step-00000002.tmp-${dead}-old`));
    const progress = quiet();
    const second = new TinyClassifier(1);
    const result = await run(second, outDir, { resume: 'latest' }, progress);
    second.store.dispose();
    expect(result.resumedFrom).toBe(join(outDir, 'step-00000002'));
    expect(readdirSync(outDir).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(progress.lines.join('')).toContain('restored step-00000002, which an interrupted save had moved aside');
    expect(progress.lines.join('')).toContain(`removed 1 unfinished checkpoint folder(s): .step-00000004.tmp-${dead}`);
  });

  it("resume: 'latest' falls back to the newest readable checkpoint, says so, and ends as an uninterrupted run", async () => {
    const straight = new TinyClassifier(1);
    const a = await run(straight, tempDir());
    straight.store.dispose();
    const outDir = tempDir();
    const first = new TinyClassifier(1);
    await run(first, outDir, { stopAtStep: 4 });
    first.store.dispose();
    // The newest checkpoint is damaged: its weights file cut short.
    const weights = join(outDir, 'step-00000004', 'trainable.safetensors');
    truncateSync(weights, 40);
    const progress = quiet();
    const second = new TinyClassifier(1);
    const b = await run(second, outDir, { resume: 'latest' }, progress);
    second.store.dispose();
    expect(b.resumedFrom).toBe(join(outDir, 'step-00000002'));
    expect(b.passedOver?.map((p) => p.dir)).toEqual([join(outDir, 'step-00000004')]);
    const log = progress.lines.join('');
    expect(log).toMatch(/cannot resume from .*step-00000004: .*trainable\.safetensors: invalid safetensors file/);
    expect(log).toContain(`resuming from ${join(outDir, 'step-00000002')}, the newest readable checkpoint`);
    b.lossHistory.forEach((loss, i) => expect(Math.abs(loss - a.lossHistory[i]!)).toBeLessThan(1e-6));
  });

  it('refuses to guess when no checkpoint reads, listing why', async () => {
    const outDir = tempDir();
    const first = new TinyClassifier(1);
    await run(first, outDir, { stopAtStep: 2 });
    first.store.dispose();
    writeFileSync(join(outDir, 'step-00000002', 'trainer-state.json'), '{"format": "bvllm-trainer-checkpoint", "version": 1, "step": "two"}');
    const model = new TinyClassifier(1);
    await expect(run(model, outDir, { resume: 'latest' })).rejects.toThrow(/no readable checkpoint to resume from: .*trainer-state\.json: stage/);
    model.store.dispose();
  });
});

