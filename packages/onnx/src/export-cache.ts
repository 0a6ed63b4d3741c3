import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '@bvllm/core';
import { rawBytes, type InitializerData } from './data-types.js';

/** Written last into a finished export folder; a folder without it is a crashed export and is rebuilt. */
const COMPLETE_MARKER = '.export-complete';

/**
 * A cache key for an export: sha256 over the exporter's version, any options, and every weight's name, shape and
 * bytes (in the given order), so re-exporting happens exactly when the weights, options or exporter change.
 */
export function exportKey(exporterVersion: string, weights: Iterable<readonly [string, tf.Tensor | InitializerData]>, options: unknown = {}): string {
  const hash = createHash('sha256');
  hash.update(`${exporterVersion}\0${JSON.stringify(options)}\0`);
  for (const [name, value] of weights) {
    const data = value instanceof tf.Tensor ? (value.dataSync() as InitializerData) : value;
    const shape = value instanceof tf.Tensor ? value.shape.join(',') : String(value.length);
    hash.update(`${name}\0${shape}\0`);
    hash.update(rawBytes(data));
  }
  return hash.digest('hex').slice(0, 32);
}

/**
 * The folder `dir/key`, built by `build(folder)` on first use. The build writes into a temporary folder that is
 * renamed into place only once it finished, so a crash never leaves a half-written export that looks valid.
 */
export async function exportCached(dir: string, key: string, build: (folder: string) => void | Promise<void>): Promise<string> {
  const folder = join(dir, key);
  if (existsSync(join(folder, COMPLETE_MARKER))) return folder;
  const temp = join(dir, `${key}.tmp-${process.pid}`);
  rmSync(temp, { recursive: true, force: true });
  mkdirSync(temp, { recursive: true });
  try {
    await build(temp);
    writeFileSync(join(temp, COMPLETE_MARKER), new Date().toISOString());
    rmSync(folder, { recursive: true, force: true });
    renameSync(temp, folder);
  } catch (error) {
    rmSync(temp, { recursive: true, force: true });
    throw error;
  }
  return folder;
}
