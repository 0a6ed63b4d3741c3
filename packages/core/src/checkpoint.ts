/**
 * Our checkpoint format for any stage or whole pipeline: a folder holding `weights.safetensors` and
 * `checkpoint.json` (format tag, format version, the stage `kind`, its validated config, and every tensor's shape).
 * The manifest names the kind and shapes so a load can refuse the wrong checkpoint with a message that says why,
 * before any tensor reaches a model (llm.c's header has a magic number and a version for the same reason).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { CheckpointFormatError, WeightsError } from './errors.js';
import { SafetensorsFile } from './safetensors/safetensors-file.js';
import { writeSafetensors, type WritableTensor, type WriteOptions } from './safetensors/write.js';
import type { Stage } from './stage.js';

export const CHECKPOINT_FORMAT = 'bvllm-checkpoint';
/** Bumped when a saved folder stops being readable by older code. */
export const CHECKPOINT_FORMAT_VERSION = 1;
const CHECKPOINT_MANIFEST = 'checkpoint.json';
const CHECKPOINT_WEIGHTS = 'weights.safetensors';

const manifestSchema = z
  .object({
    format: z.string(),
    formatVersion: z.number().int(),
    /** The stage or pipeline kind that wrote it, e.g. `gumbel` or `bvllm`. */
    kind: z.string().min(1),
    /** The writer's validated config, for rebuilding the same model. */
    config: z.unknown(),
    /** Every tensor in `weights.safetensors` with its shape. */
    tensors: z.record(z.array(z.number().int().nonnegative())),
  })
  .strict();

/** The parsed `checkpoint.json`. */
export type CheckpointManifest = z.infer<typeof manifestSchema>;

/** A loaded checkpoint; the caller owns (and disposes) `tensors`. */
export interface Checkpoint {
  kind: string;
  config: unknown;
  tensors: Map<string, tf.Tensor>;
}

/**
 * Writes a checkpoint folder atomically: everything goes to a sibling temp folder that is renamed over `dir` only
 * when complete, so a crash leaves either the old checkpoint or the new one, never a mix of the two.
 */
export function saveCheckpoint(
  dir: string,
  checkpoint: { kind: string; config: unknown; tensors: ReadonlyMap<string, WritableTensor> },
  options: Pick<WriteOptions, 'floatDtype'> = {},
): void {
  const tensors: Record<string, number[]> = {};
  for (const [key, t] of checkpoint.tensors) tensors[key] = [...t.shape];
  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT,
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    kind: checkpoint.kind,
    config: checkpoint.config,
    tensors,
  };
  mkdirSync(dirname(dir), { recursive: true });
  const tag = `${process.pid}-${Date.now().toString(36)}`;
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${tag}`);
  const old = join(dirname(dir), `.${basename(dir)}.old-${tag}`);
  mkdirSync(tmp);
  try {
    writeSafetensors(join(tmp, CHECKPOINT_WEIGHTS), checkpoint.tensors, { ...options, metadata: { format: CHECKPOINT_FORMAT } });
    writeFileSync(join(tmp, CHECKPOINT_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    // A directory cannot be renamed over a non-empty one, so the old folder steps aside first.
    if (existsSync(dir)) renameSync(dir, old);
    renameSync(tmp, dir);
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    throw error;
  }
  rmSync(old, { recursive: true, force: true });
}

/** Reads and checks `checkpoint.json`: format tag, format version and (when given) the kind. */
export function readCheckpointManifest(dir: string, expectedKind?: string): CheckpointManifest {
  const path = join(dir, CHECKPOINT_MANIFEST);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new CheckpointFormatError(path, `not a readable checkpoint manifest (${(cause as Error).message})`, { cause });
  }
  const format = (raw as { format?: unknown } | null)?.format;
  if (format !== CHECKPOINT_FORMAT) throw new CheckpointFormatError(path, `format is ${JSON.stringify(format)}, expected "${CHECKPOINT_FORMAT}"`);
  const version = (raw as { formatVersion?: unknown }).formatVersion;
  if (version !== CHECKPOINT_FORMAT_VERSION)
    throw new CheckpointFormatError(
      path,
      `format version ${JSON.stringify(version)}, this @bvllm/core reads version ${CHECKPOINT_FORMAT_VERSION} (use a matching release)`,
    );
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CheckpointFormatError(path, `${issue.path.join('.') || '(root)'}: ${issue.message}`, { cause: parsed.error });
  }
  if (expectedKind !== undefined && parsed.data.kind !== expectedKind)
    throw new CheckpointFormatError(path, `holds kind "${parsed.data.kind}", expected "${expectedKind}"`);
  return parsed.data;
}

/**
 * Loads a checkpoint folder. Refuses (CheckpointFormatError) a wrong format, version or kind and a weights file that
 * disagrees with its manifest; refuses (WeightsError, every key listed) tensors that do not fit `expectedShapes`.
 */
export function loadCheckpoint(
  dir: string,
  options: { kind?: string; expectedShapes?: ReadonlyMap<string, readonly number[]> } = {},
): Checkpoint {
  const manifest = readCheckpointManifest(dir, options.kind);
  if (options.expectedShapes) checkShapes(`checkpoint ${dir}`, manifest.tensors, options.expectedShapes);
  const weightsPath = join(dir, CHECKPOINT_WEIGHTS);
  const file = SafetensorsFile.open(weightsPath);
  try {
    const listed = Object.keys(manifest.tensors);
    const stored = file.keys();
    const unlisted = stored.filter((k) => !Object.hasOwn(manifest.tensors, k));
    const absent = listed.filter((k) => !file.tensors.has(k));
    if (unlisted.length || absent.length)
      throw new CheckpointFormatError(
        weightsPath,
        `does not match ${CHECKPOINT_MANIFEST}: ${absent.length} listed key(s) absent [${absent.slice(0, 10).join(', ')}], ` +
          `${unlisted.length} unlisted key(s) present [${unlisted.slice(0, 10).join(', ')}]`,
      );
    for (const key of listed) {
      const actual = file.info(key).shape;
      if (!tf.util.arraysEqual(actual, manifest.tensors[key]))
        throw new CheckpointFormatError(
          weightsPath,
          `tensor "${key}" is [${actual.join(', ')}] but ${CHECKPOINT_MANIFEST} says [${manifest.tensors[key].join(', ')}]`,
        );
    }
    const tensors = new Map<string, tf.Tensor>();
    try {
      for (const key of listed) tensors.set(key, file.readTensor(key));
    } catch (error) {
      tf.dispose([...tensors.values()]);
      throw error;
    }
    return { kind: manifest.kind, config: manifest.config, tensors };
  } finally {
    file.close();
  }
}

function checkShapes(model: string, found: Record<string, number[]>, expected: ReadonlyMap<string, readonly number[]>): void {
  const missing = [...expected.keys()].filter((k) => !Object.hasOwn(found, k));
  const unexpected = Object.keys(found).filter((k) => !expected.has(k));
  const misshaped = Object.entries(found)
    .filter(([k, shape]) => expected.has(k) && !tf.util.arraysEqual(shape, [...expected.get(k)!]))
    .map(([key, actual]) => ({ key, expected: [...expected.get(key)!], actual }));
  if (missing.length || unexpected.length || misshaped.length) throw new WeightsError(model, missing, unexpected, misshaped);
}

/** Saves a stage (or a pipeline that implements Stage): its kind, config and variables. */
export function saveStage(dir: string, stage: Stage<{ kind: string }, unknown, unknown>, options: Pick<WriteOptions, 'floatDtype'> = {}): void {
  saveCheckpoint(dir, { kind: stage.kind, config: stage.config, tensors: stage.variables() }, options);
}

/** Loads a checkpoint written by {@link saveStage} into `stage`, refusing one of another kind or shape. */
export function loadStage(dir: string, stage: Stage<{ kind: string }, unknown, unknown>): void {
  const expectedShapes = new Map([...stage.variables()].map(([k, v]) => [k, v.shape]));
  const { tensors } = loadCheckpoint(dir, { kind: stage.kind, expectedShapes });
  try {
    stage.loadWeights(tensors);
  } finally {
    tf.dispose([...tensors.values()]);
  }
}
