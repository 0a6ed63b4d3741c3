/**
 * Every error the project throws extends {@link BvllmError}. Callers (the CLI, the server) branch on `code`, which is
 * stable across duplicated package copies and over JSON, never on message text.
 */
export type BvllmErrorCode =
  | 'SHAPE_MISMATCH'
  | 'CONFIG_INVALID'
  | 'UNKNOWN_KIND'
  | 'WEIGHTS_MISMATCH'
  | 'WEIGHTS_NON_FINITE'
  | 'SAFETENSORS_FORMAT'
  | 'CHECKPOINT_FORMAT'
  | 'BACKEND_UNAVAILABLE'
  | 'VIDEO_DECODE'
  | 'MEDIA_UNSUPPORTED'
  | 'VIDEO_ENCODE'
  | 'PROMPT_TOO_LONG'
  | 'TOKENIZER'
  | 'DATASET'
  | 'ABORTED'
  | 'INVALID_ARGUMENT'
  | 'ONNX_GRAPH'
  | 'ONNX_RUNTIME'
  | 'REDIS_UNAVAILABLE'
  | 'JOB_NOT_FOUND'
  | 'MODEL_MISMATCH'
  | 'JOB_FAILED'
  | 'VOCABULARY_MISMATCH'
  | 'STREAM_OPEN'
  | 'STREAM_NO_VIDEO'
  | 'STREAM_STALLED'
  | 'STREAM_CLOSED'
  | 'STREAM_SNAPSHOT_EXPIRED';

const marker = Symbol.for('bvllm.error');

export class BvllmError extends Error {
  readonly [marker] = true;
  constructor(
    readonly code: BvllmErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }

  /** True for any BvllmError, also one thrown by a second installed copy of this package. */
  static isInstance(value: unknown): value is BvllmError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[marker] === true;
  }
}

/** A tensor's shape is not what its consumer declares. String dims are labels that match any size. */
export class ShapeError extends BvllmError {
  constructor(
    readonly tensor: string,
    readonly expected: readonly (number | string)[],
    readonly actual: readonly number[],
    detail?: string,
  ) {
    super(
      'SHAPE_MISMATCH',
      `${tensor}: expected [${expected.join(', ')}], got [${actual.join(', ')}]${detail ? ` (${detail})` : ''}`,
    );
  }
}

/** A config failed validation; `path` is the zod path of the first bad field (e.g. `frameSelect.numQueries`). */
export class ConfigError extends BvllmError {
  constructor(
    message: string,
    readonly path: readonly (string | number)[] = [],
    options?: { cause?: unknown },
  ) {
    super('CONFIG_INVALID', message, options);
  }
}

/** A registry was asked for a kind it does not have; `valid` lists what it has. */
export class UnknownKindError extends BvllmError {
  constructor(
    readonly registry: string,
    readonly kind: string,
    readonly valid: readonly string[],
  ) {
    super('UNKNOWN_KIND', `unknown ${registry} kind "${kind}"; valid kinds: ${valid.join(', ') || '(none registered)'}`);
  }
}

/**
 * A checkpoint does not fit a model: every missing, unexpected and mis-shaped key is listed at once. `detail`, when
 * given, is appended (e.g. the config fields that set the expected sizes).
 */
export class WeightsError extends BvllmError {
  constructor(
    readonly model: string,
    readonly missing: readonly string[],
    readonly unexpected: readonly string[],
    readonly misshaped: readonly { key: string; expected: readonly number[]; actual: readonly number[] }[],
    detail?: string,
  ) {
    const parts: string[] = [];
    const list = (xs: readonly string[]) => xs.slice(0, 20).join(', ') + (xs.length > 20 ? `, … (${xs.length} in all)` : '');
    if (missing.length) parts.push(`missing ${missing.length} key(s): ${list(missing)}`);
    if (unexpected.length) parts.push(`unexpected ${unexpected.length} key(s): ${list(unexpected)}`);
    if (misshaped.length)
      parts.push(
        `mis-shaped ${misshaped.length} key(s): ` +
          misshaped
            .slice(0, 20)
            .map((m) => `${m.key} expected [${m.expected.join(', ')}] got [${m.actual.join(', ')}]`)
            .join('; '),
      );
    super('WEIGHTS_MISMATCH', `${model}: checkpoint does not match the model: ${parts.join('; ')}${detail ? `; ${detail}` : ''}`);
  }
}

/**
 * A weight holds NaN or ±Infinity. Such a model answers with garbage (NUL characters from a NaN softmax), so it is
 * refused when the tensor is read, naming the tensor, how many values are bad and the first one.
 */
export class NonFiniteWeightsError extends BvllmError {
  constructor(
    readonly source: string,
    readonly key: string,
    readonly count: number,
    readonly firstIndex: number,
    readonly firstValue: number,
  ) {
    super('WEIGHTS_NON_FINITE', `${source}: tensor "${key}" holds ${count} non-finite value(s) (first: ${firstValue} at flat index ${firstIndex})`);
  }
}

/** A safetensors file is malformed or hostile (bad header length, offsets, dtype, truncation). */
export class SafetensorsFormatError extends BvllmError {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super('SAFETENSORS_FORMAT', `${file}: invalid safetensors file: ${reason}`);
  }
}

/** A checkpoint folder is not in our format or is of a different format version. */
export class CheckpointFormatError extends BvllmError {
  constructor(
    readonly path: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('CHECKPOINT_FORMAT', `${path}: ${reason}`, options);
  }
}

/** A forced backend (BVLLM_BACKEND) could not be loaded. */
export class BackendUnavailableError extends BvllmError {
  constructor(
    readonly backend: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('BACKEND_UNAVAILABLE', `backend "${backend}" is unavailable: ${reason}`, options);
  }
}

/** An argument outside what a function accepts (K larger than the query count, an empty video, …). */
export class InvalidArgumentError extends BvllmError {
  constructor(
    readonly argument: string,
    reason: string,
  ) {
    super('INVALID_ARGUMENT', `${argument}: ${reason}`);
  }
}

/** Work stopped because its AbortSignal fired. */
export class AbortedError extends BvllmError {
  constructor(what: string, options?: { cause?: unknown }) {
    super('ABORTED', `${what} was aborted`, options);
  }
}

/** The last non-empty lines of a child process's stderr, indented: ffmpeg prints its fatal error last. */
export function stderrExcerpt(stderr: string, lines = 6): string {
  return stderr
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0)
    .slice(-lines)
    .map((l) => `  ${l}`)
    .join('\n');
}
