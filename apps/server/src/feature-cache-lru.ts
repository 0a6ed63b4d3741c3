/**
 * Bounds the on-disk feature cache in bytes (issue #20 item 2): the session writes an entry per encoded medium
 * (`<key>.json` last, beside its `.cls.f32`, `.feature.f32` and `.patches.f16`) and never evicts. After each
 * encode the server marks the medium's entries as used (the `.json`'s mtime) and removes the least recently used
 * entries until the folder fits. Entries in use stay readable: a reader holds its files open, and unlinking an
 * open file on POSIX frees it only at close.
 */
import { readFileSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';

interface Entry {
  key: string;
  bytes: number;
  usedMs: number;
  files: string[];
}

const KEY = /^([0-9a-f]{64})\./;

export class FeatureCacheLru {
  constructor(
    readonly dir: string,
    readonly maxBytes: number,
  ) {}

  /** Committed entries (those with a `.json`) and their sizes; half-written ones are the session's business. */
  private entries(): Entry[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const byKey = new Map<string, Entry>();
    for (const name of names) {
      const key = KEY.exec(name)?.[1];
      if (!key) continue;
      let info;
      try {
        info = statSync(join(this.dir, name));
      } catch {
        continue;
      }
      const entry = byKey.get(key) ?? { key, bytes: 0, usedMs: -1, files: [] };
      entry.bytes += info.size;
      entry.files.push(name);
      if (name === `${key}.json`) entry.usedMs = info.mtimeMs;
      byKey.set(key, entry);
    }
    return [...byKey.values()].filter((e) => e.usedMs >= 0);
  }

  /** Marks the entries of the medium with content hash `videoHash` as just used, then evicts down to `maxBytes`. */
  touchAndPrune(videoHash: string): { bytes: number; evicted: number } {
    const now = new Date();
    const entries = this.entries();
    for (const entry of entries) {
      try {
        const meta = JSON.parse(readFileSync(join(this.dir, `${entry.key}.json`), 'utf8')) as { video?: string };
        if (meta.video === videoHash) {
          utimesSync(join(this.dir, `${entry.key}.json`), now, now);
          entry.usedMs = now.getTime();
        }
      } catch {
        // An unreadable entry is the least useful: evict it first.
        entry.usedMs = 0;
      }
    }
    entries.sort((a, b) => a.usedMs - b.usedMs);
    let bytes = entries.reduce((n, e) => n + e.bytes, 0);
    let evicted = 0;
    for (const entry of entries) {
      if (bytes <= this.maxBytes) break;
      // The commit marker first, so a half-removed entry is never read as complete.
      for (const name of [`${entry.key}.json`, ...entry.files.filter((f) => !f.endsWith('.json'))]) rmSync(join(this.dir, name), { force: true });
      bytes -= entry.bytes;
      evicted++;
    }
    return { bytes, evicted };
  }
}
