/**
 * The JSON-lines logs of a run (`metrics.jsonl`, `skipped.jsonl`). Lines are appended after each update, but a
 * checkpoint is saved only every `checkpointEvery` updates, so a run killed in between has logged updates that its
 * resume will do again. Cutting each log back to the resumed step keeps exactly one metrics line per update.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

/**
 * Rewrites `path` keeping only the lines whose JSON `step` passes `keep` (and, for each step, only its first line
 * when `unique`); lines that do not parse (a write cut off by a kill) are dropped. The file is replaced atomically.
 * Returns how many lines were dropped.
 */
export function cutRunLog(path: string, keep: (step: number) => boolean, unique: boolean): number {
  if (!existsSync(path)) return 0;
  const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l.length > 0);
  const seen = new Set<number>();
  const kept = lines.filter((line) => {
    let step: unknown;
    try {
      step = (JSON.parse(line) as { step?: unknown }).step;
    } catch {
      return false;
    }
    if (typeof step !== 'number' || !keep(step)) return false;
    if (unique && seen.has(step)) return false;
    seen.add(step);
    return true;
  });
  if (kept.length === lines.length) return 0;
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, kept.map((l) => `${l}\n`).join(''));
  renameSync(tmp, path);
  return lines.length - kept.length;
}
