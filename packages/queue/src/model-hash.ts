/**
 * A model folder's identity for results: sha256 over every file's relative path and bytes (the `onnx/` export is
 * left out, being derived from the rest). Content, not mtimes, so copies of one model on several machines agree.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { MODULES_DIR } from '@bvllm/pipeline';

function files(root: string, dir = root): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => !(dir === root && e.name === MODULES_DIR))
    .flatMap((e) => (e.isDirectory() ? files(root, join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : []))
    .sort();
}

/** Hex sha256 of the folder's files (streamed: one chunk in memory at a time). */
export async function modelHash(modelDir: string): Promise<string> {
  const hash = createHash('sha256');
  for (const file of files(modelDir)) {
    hash.update(`${relative(modelDir, file)}\0`);
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    hash.update('\0');
  }
  return hash.digest('hex');
}
