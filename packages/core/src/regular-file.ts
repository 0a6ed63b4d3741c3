/**
 * Model folders come from users: a FIFO named `model.safetensors` or `bvllm.json` blocks the first read forever,
 * and a directory there gives an uncoded EISDIR. Readers check the kind first (issue #20 item 4).
 */
import { statSync, type Stats } from 'node:fs';

/** What a file that is not a regular file is, for the error that refuses it ("a FIFO", "a directory", …). */
export function fileKind(stat: Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/**
 * Why `path` (symlinks followed) cannot be read as a regular file: "a FIFO", "a directory", …; undefined when it is
 * a regular file or does not exist (the caller reports a missing file in its own words).
 */
export function irregularFile(path: string): string | undefined {
  const stat = statSync(path, { throwIfNoEntry: false });
  return stat === undefined || stat.isFile() ? undefined : fileKind(stat);
}
