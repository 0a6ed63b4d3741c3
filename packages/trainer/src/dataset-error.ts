import { BvllmError } from '@bvllm/core';

/** One training sample cannot be used (malformed entry, missing media, too long); the loop skips it by this class. */
export class DatasetError extends BvllmError {
  constructor(
    readonly sampleId: string,
    readonly reason: string,
  ) {
    super('DATASET', `sample ${sampleId}: ${reason}`);
  }
}
