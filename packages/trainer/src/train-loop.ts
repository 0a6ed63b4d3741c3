/**
 * The training loop of both stages (spec §2): seeded data order, micro-batches accumulated into one AdamW update,
 * global-norm clipping, a warm-up schedule, progress and metrics, and checkpoints that resume bit-for-bit.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AbortedError, BvllmError, CheckpointFormatError, InvalidArgumentError, Rng, tf, type StageContext } from '@bvllm/core';
import { AdamW } from './adamw.js';
import { cleanStaleCheckpoints, latestValidCheckpoint, loadCheckpoint, saveCheckpoint, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, type Checkpoint, type TrainerState } from './checkpoint.js';
import { cutRunLog } from './run-log.js';
import { GradientAccumulator, clipGradNorm } from './gradients.js';
import { writeLossCurve } from './loss-plot.js';
import { LrSchedule, type ScheduleKind } from './lr-schedule.js';
import { ProgressReporter, type ProgressSink } from './progress.js';
import type { TrainableModel, TrainDataset } from './trainable-model.js';
import type { TrainingStage } from './training-config.js';

/** The fields of a stage config the loop reads (a parsed `TrainingConfig` satisfies it). */
export interface LoopConfig {
  stage: TrainingStage;
  seed: number;
  epochs: number;
  maxSteps?: number;
  lr: number;
  schedule: ScheduleKind;
  warmupRatio: number;
  weightDecay: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEps: number;
  maxGradNorm: number;
  microBatchSize: number;
  gradientAccumulationSteps: number;
  checkpointEvery: number;
  logEvery: number;
}

export interface TrainOptions<Sample, Batch> {
  model: TrainableModel<Batch>;
  dataset: TrainDataset<Sample>;
  /**
   * Builds one micro-batch from its samples (padding, masks, decoded frames). A DatasetError or VIDEO_DECODE error
   * skips the samples that cause it, not the run. `at.cursor` is the micro-batch's place in the run's stream of
   * micro-batches: a collate that draws at random forks its generator from it, so a resumed run draws the same.
   */
  collate: (samples: Sample[], at: { cursor: number }) => Batch;
  /**
   * Frees a batch after its step. Default: `tf.dispose(batch)`, every tensor in it; pass your own when the batch
   * holds tensors that outlive it (cached frame features).
   */
  disposeBatch?: (batch: Batch) => void;
  config: LoopConfig;
  /** Checkpoints (`step-N/`), `metrics.jsonl`, `skipped.jsonl` and `loss.png` go here. */
  outDir: string;
  /**
   * A checkpoint folder to continue from, or `latest` for the newest readable one under `outDir` (a corrupt newest
   * checkpoint falls back to the one before, with a note; none → a fresh start).
   */
  resume?: string;
  /** Ends this run after this update (saving a checkpoint there), as an interrupted job would. */
  stopAtStep?: number;
  /** Checked between updates; on abort a checkpoint is saved, then AbortedError is thrown. */
  signal?: AbortSignal;
  /** Progress output; defaults to process.stderr. */
  progress?: ProgressSink;
  /** Names the run on its progress bar (`stage 1 [####--] 4/10 …`), for a recipe that runs several. */
  label?: string;
  /** Exempts keys from weight decay (HF exempts biases and norms); default all decayed. */
  decay?: (key: string) => boolean;
}

export interface TrainResult {
  /** Updates done in total (including those before a resume). */
  step: number;
  totalSteps: number;
  /** Mean loss of every update so far. */
  lossHistory: number[];
  skipped: number;
  /** The last checkpoint written (or resumed from); undefined when no update ran. */
  checkpoint?: string;
  /** The checkpoint this run resumed from, if any. */
  resumedFrom?: string;
  /** Newer checkpoints `resume: 'latest'` passed over because they could not be read, with the reason. */
  passedOver?: { dir: string; reason: string }[];
  /** `loss.png`, written when the run reaches its last update. */
  lossCurve?: string;
}

/** Updates of a run: HF's `ceil(epochs · max(1, floor(microBatchesPerEpoch / accumulation)))`, or `maxSteps`. */
export function totalStepsFor(config: LoopConfig, datasetLength: number): number {
  if (config.maxSteps) return config.maxSteps;
  const microPerEpoch = Math.ceil(datasetLength / config.microBatchSize);
  return Math.ceil(config.epochs * Math.max(1, Math.floor(microPerEpoch / config.gradientAccumulationSteps)));
}

/**
 * The sample indices of micro-batch `cursor` in the stream of epochs, each epoch a fresh seeded shuffle (the
 * sampler's `seed + epoch`), so a resumed run only needs the cursor to see the same data.
 */
export class DataOrder {
  private epoch = -1;
  private order: number[] = [];
  readonly microPerEpoch: number;

  constructor(
    private readonly seed: number,
    private readonly length: number,
    private readonly microBatchSize: number,
  ) {
    this.microPerEpoch = Math.ceil(length / microBatchSize);
  }

  microBatch(cursor: number): { epoch: number; indices: number[] } {
    const epoch = Math.floor(cursor / this.microPerEpoch);
    if (epoch !== this.epoch) {
      this.epoch = epoch;
      this.order = Rng.fromSeed(this.seed).fork(`data-epoch-${epoch}`).shuffle(Array.from({ length: this.length }, (_, i) => i));
    }
    const start = (cursor % this.microPerEpoch) * this.microBatchSize;
    return { epoch, indices: this.order.slice(start, start + this.microBatchSize) };
  }
}

/** Errors that condemn one sample, not the run: bad data, an undecodable video or a file that is no allowed media. */
function isSampleError(error: unknown): boolean {
  return BvllmError.isInstance(error) && (error.code === 'DATASET' || error.code === 'VIDEO_DECODE' || error.code === 'MEDIA_UNSUPPORTED');
}

export async function train<Sample, Batch>(options: TrainOptions<Sample, Batch>): Promise<TrainResult> {
  const { model, dataset, collate, config, outDir } = options;
  const disposeBatch = options.disposeBatch ?? ((batch: Batch) => tf.dispose(batch as unknown as tf.TensorContainer));
  if (dataset.length === 0) throw new InvalidArgumentError('dataset', 'a training run needs at least one sample');
  mkdirSync(outDir, { recursive: true });
  const reporter = new ProgressReporter(options.progress ?? process.stderr, config.logEvery, options.label);
  // Folders of saves a killed run never finished; the checkpoint a save had moved aside comes back first.
  const cleaned = cleanStaleCheckpoints(outDir);
  for (const name of cleaned.restored) reporter.note(`restored ${name}, which an interrupted save had moved aside`);
  if (cleaned.removed.length) reporter.note(`removed ${cleaned.removed.length} unfinished checkpoint folder(s): ${cleaned.removed.join(', ')}`);
  const isTrainable = model.trainable(config.stage);
  // The filter is the single source of truth: frozen variables get no gradient tape and are not saved.
  for (const [key, v] of model.store.entries()) v.trainable = isTrainable(key);
  const params = model.store.select(isTrainable);
  const keyOfVariable = new Map([...params].map(([k, v]) => [v.name, k]));
  const variables = [...params.values()];
  const optimizer = new AdamW(params, {
    betas: [config.adamBeta1, config.adamBeta2],
    eps: config.adamEps,
    weightDecay: config.weightDecay,
    decay: options.decay,
  });
  const totalSteps = totalStepsFor(config, dataset.length);
  const schedule = new LrSchedule(config.schedule, config.lr, totalSteps, config.warmupRatio);
  const order = new DataOrder(config.seed, dataset.length, config.microBatchSize);
  const run = {
    seed: config.seed,
    microBatchSize: config.microBatchSize,
    gradientAccumulationSteps: config.gradientAccumulationSteps,
    datasetLength: dataset.length,
  };

  let state: TrainerState = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    stage: config.stage,
    step: 0,
    totalSteps,
    cursor: 0,
    rng: Rng.fromSeed(config.seed).fork('training-noise').state(),
    lossHistory: [],
    skipped: 0,
    run,
  };
  let resumeFrom: string | undefined;
  let saved: Checkpoint | undefined;
  let passedOver: { dir: string; reason: string }[] | undefined;
  if (options.resume === 'latest') {
    const found = latestValidCheckpoint(outDir);
    if (found) {
      ({ dir: resumeFrom, checkpoint: saved, passedOver } = found);
      for (const p of passedOver) reporter.note(`cannot resume from ${p.dir}: ${p.reason}`);
      if (passedOver.length) reporter.note(`resuming from ${resumeFrom}, the newest readable checkpoint`);
    }
  } else if (options.resume) {
    resumeFrom = options.resume;
    saved = loadCheckpoint(resumeFrom);
  }
  if (resumeFrom && saved) {
    try {
      for (const [field, value] of Object.entries(run))
        if (saved.state.run[field as keyof typeof run] !== value)
          throw new CheckpointFormatError(resumeFrom, `${field} is ${saved.state.run[field as keyof typeof run]} in the checkpoint but ${value} now; a resume must be the same run`);
      if (saved.state.stage !== config.stage)
        throw new CheckpointFormatError(resumeFrom, `checkpoint of ${saved.state.stage}, resuming ${config.stage}`);
      model.store.load(saved.weights, { allowMissing: (k) => !isTrainable(k) });
      optimizer.loadState(saved.optimizer);
    } finally {
      tf.dispose([...saved.weights.values(), ...saved.optimizer.expAvg.values(), ...saved.optimizer.expAvgSq.values()]);
    }
    state = { ...saved.state, totalSteps };
  }
  const noise = Rng.fromState(state.rng);
  const metricsPath = join(outDir, 'metrics.jsonl');
  const skippedPath = join(outDir, 'skipped.jsonl');
  // Updates logged after the checkpoint we start from will be done again: drop their lines (all of them on a fresh start).
  const doneSteps = state.step;
  cutRunLog(metricsPath, (step) => step <= doneSteps, true);
  cutRunLog(skippedPath, (step) => step < doneSteps, false);
  const startStep = state.step;
  const startTime = performance.now();
  const lastStep = Math.min(totalSteps, options.stopAtStep ?? totalSteps);
  let lastCheckpoint = resumeFrom;

  const save = () => {
    state.rng = noise.state();
    const weights = model.store.snapshot(isTrainable);
    const moments = optimizer.state();
    try {
      lastCheckpoint = saveCheckpoint(outDir, { weights, optimizer: moments, state });
    } finally {
      tf.dispose([...weights.values(), ...moments.expAvg.values(), ...moments.expAvgSq.values()]);
    }
  };

  try {
    while (state.step < lastStep) {
      // A turn of the event loop between updates, so a signal handler (Ctrl-C) can abort the run between two of them.
      if (options.signal) await new Promise((resolve) => setImmediate(resolve));
      if (options.signal?.aborted) {
        save();
        throw new AbortedError(`training at update ${state.step}`, { cause: options.signal.reason });
      }
      const stepStart = performance.now();
      const accumulator = new GradientAccumulator();
      const losses: number[] = [];
      let samplesSeen = 0;
      let epoch = 0;
      for (let micro = 0; micro < config.gradientAccumulationSteps; micro++) {
        const slot = order.microBatch(state.cursor);
        const at = { cursor: state.cursor };
        epoch = slot.epoch;
        state.cursor += 1;
        const skip = (index: number, error: unknown) => {
          // The official loader swaps in a random other sample (spec §2); we skip, count and log it instead.
          state.skipped += 1;
          const id = dataset.idOf?.(index) ?? String(index);
          const reason = error instanceof Error ? error.message : String(error);
          appendFileSync(skippedPath, `${JSON.stringify({ step: state.step, index, id, reason })}\n`);
          reporter.note(`skipped sample ${id}: ${reason}`);
        };
        let loaded: { index: number; sample: Sample }[] = [];
        for (const index of slot.indices) {
          try {
            loaded.push({ index, sample: dataset.get(index) });
          } catch (error) {
            skip(index, error);
          }
        }
        let batch: Batch | undefined;
        try {
          if (loaded.length) batch = collate(loaded.map((l) => l.sample), at);
        } catch (error) {
          if (!isSampleError(error)) throw error;
          // A collate that decodes media fails for the whole micro-batch; find the culprit(s) one sample at a time.
          loaded = loaded.filter(({ index, sample }) => {
            try {
              disposeBatch(collate([sample], at));
              return true;
            } catch (single) {
              if (!isSampleError(single)) throw single;
              skip(index, single);
              return false;
            }
          });
          if (loaded.length) batch = collate(loaded.map((l) => l.sample), at);
        }
        if (batch === undefined) continue;
        try {
          const context: StageContext = { training: true, rng: noise };
          const { value, grads } = tf.variableGrads(() => model.loss(batch, context), variables);
          losses.push(value.dataSync()[0]);
          value.dispose();
          const byKey = new Map(Object.entries(grads).map(([name, g]) => [keyOfVariable.get(name)!, g]));
          accumulator.add(byKey);
          tf.dispose(Object.values(grads));
        } finally {
          disposeBatch(batch);
        }
        samplesSeen += loaded.length;
      }
      let gradNorm = 0;
      const lr = schedule.lrAt(state.step);
      if (accumulator.microBatches > 0) {
        let grads = accumulator.mean();
        if (config.maxGradNorm > 0) ({ totalNorm: gradNorm, grads } = clipGradNorm(grads, config.maxGradNorm));
        optimizer.update(grads, lr);
        tf.dispose([...grads.values()]);
      }
      accumulator.dispose();
      const loss = losses.length ? losses.reduce((a, b) => a + b, 0) / losses.length : Number.NaN;
      state.step += 1;
      state.lossHistory.push(loss);
      const seconds = (performance.now() - stepStart) / 1000;
      const samplesPerSec = samplesSeen / Math.max(seconds, 1e-9);
      appendFileSync(
        metricsPath,
        `${JSON.stringify({ step: state.step, epoch, loss, lr, gradNorm, samplesPerSec, skipped: state.skipped })}\n`,
      );
      reporter.update({
        step: state.step,
        totalSteps,
        loss,
        lr,
        samplesPerSec,
        elapsedSec: (performance.now() - startTime) / 1000,
        startStep,
      });
      if (state.step % config.checkpointEvery === 0 || state.step === lastStep) save();
    }
  } finally {
    optimizer.dispose();
  }
  let lossCurve: string | undefined;
  if (state.step === totalSteps && state.lossHistory.some(Number.isFinite)) {
    lossCurve = join(outDir, 'loss.png');
    writeLossCurve(lossCurve, state.lossHistory);
  }
  return { step: state.step, totalSteps, lossHistory: state.lossHistory, skipped: state.skipped, checkpoint: lastCheckpoint, lossCurve, resumedFrom: resumeFrom, passedOver };
}
