import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CheckpointFormatError } from '@bvllm/core';

/**
 * The shipped default model, `bvllm-tiny` (see its MODEL_CARD.md): trained by this project on its synthetic
 * benchmark, because no pretrained weights can be downloaded where it is built. Resolved beside the built code
 * (`dist/` and `src/` are both one level below the package root), so it works from a workspace and an install.
 */
export function defaultModelDir(): string {
  const dir = fileURLToPath(new URL('../models/bvllm-tiny', import.meta.url));
  if (!existsSync(dir)) throw new CheckpointFormatError(dir, 'the default model is missing from this install; pass --model DIR');
  return dir;
}
