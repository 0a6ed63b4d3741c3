import { BvllmError } from '@bvllm/core';

/** Which source a weight is read from. `lora` never appears alone: a merged adapter reads through `qwen2`. */
export type SourceName = 'bvllm' | 'vision' | 'instructblip' | 'qwen2' | 'random';

export interface MissingWeight {
  key: string;
  shape: readonly number[];
}
export interface UnexpectedWeight {
  source: SourceName;
  /** The key in the source's own file. */
  key: string;
  /** What the source's key table maps it to (a weight this config does not have). */
  mapsTo: string;
}
export interface MisshapedWeight {
  key: string;
  source: SourceName;
  sourceKey: string;
  expected: readonly number[];
  actual: readonly number[];
}
export interface WrongDtypeWeight {
  key: string;
  source: SourceName;
  sourceKey: string;
  dtype: string;
}

const shape = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * The sources do not fit the config. Every missing, unexpected, mis-shaped and non-float key is listed, in full
 * (a vision-only InstructBLIP folder lacks ~300 Q-Former keys, and the user needs to see that they all are
 * Q-Former keys). The code is WEIGHTS_MISMATCH, like a strict checkpoint load; the lists are the typed detail.
 */
export class ConversionError extends BvllmError {
  constructor(
    readonly missing: readonly MissingWeight[],
    readonly unexpected: readonly UnexpectedWeight[],
    readonly misshaped: readonly MisshapedWeight[],
    readonly wrongDtype: readonly WrongDtypeWeight[],
  ) {
    const parts: string[] = [];
    if (missing.length)
      parts.push(`missing ${missing.length} weight(s) no source holds (pass --allow-random NAME to start them random): ${missing.map((m) => m.key).join(', ')}`);
    if (unexpected.length) parts.push(`unexpected ${unexpected.length} key(s): ${unexpected.map((u) => `${u.source}:${u.key} (→ ${u.mapsTo})`).join(', ')}`);
    if (misshaped.length)
      parts.push(`wrong shape for ${misshaped.length} key(s): ${misshaped.map((m) => `${m.key} expected ${shape(m.expected)}, ${m.source}:${m.sourceKey} is ${shape(m.actual)}`).join('; ')}`);
    if (wrongDtype.length) parts.push(`not a float weight, ${wrongDtype.length} key(s): ${wrongDtype.map((w) => `${w.source}:${w.sourceKey} is ${w.dtype}`).join(', ')}`);
    super('WEIGHTS_MISMATCH', `the sources do not fit the config: ${parts.join('; ')}`);
  }

  /** Every key named, source-side for unexpected and dtype problems, model-side otherwise. */
  keys(): string[] {
    return [...this.missing.map((m) => m.key), ...this.unexpected.map((u) => u.key), ...this.misshaped.map((m) => m.key), ...this.wrongDtype.map((w) => w.sourceKey)];
  }
}
