/**
 * WeightSources that are views over others: a key-renamed one (a checkpoint's key table applied to names only) and
 * an overlay of several. Views read nothing until `read`, and closing a view closes what it views.
 */
import { mapKey, type KeyRule } from './key-rules.js';
import { keyList, WeightSourceError } from './weight-source-error.js';
import type { WeightInfo, WeightSource } from './weight-source.js';

/**
 * `source` under the keys `rules` give (first matching rule wins: drop, or rename with `$1` references). A rule
 * with a `transform` is refused: a layout change needs the tensor, and a view maps names only (transpose in the
 * consumer, e.g. inside a lazy initializer's load). The key table is built on first use, from `source.keys()`;
 * two source keys renamed onto one key is an error listing every collision.
 */
export function renamedSource(source: WeightSource, rules: readonly KeyRule[]): WeightSource {
  const transforming = rules.filter((r) => r.transform).map((r) => String(r.match));
  if (transforming.length)
    throw new WeightSourceError(
      'renamedSource',
      'transform-rule',
      [],
      `key rule(s) ${transforming.join(', ')} transform tensors; a renamed view can only drop and rename keys`,
    );
  let table: Map<string, string> | undefined;
  const fromOf = (): Map<string, string> => {
    if (table) return table;
    const built = new Map<string, string>();
    const collisions: string[] = [];
    for (const key of source.keys()) {
      const mapped = mapKey(key, rules);
      if (!mapped) continue;
      const earlier = built.get(mapped.key);
      if (earlier !== undefined) collisions.push(`${mapped.key} ← ${earlier}, ${key}`);
      else built.set(mapped.key, key);
    }
    if (collisions.length)
      throw new WeightSourceError('renamedSource', 'duplicate-key', collisions, `several keys are renamed onto one: ${keyList(collisions)}`);
    table = built;
    return built;
  };
  const from = (key: string): string => {
    const original = fromOf().get(key);
    if (original === undefined) throw new WeightSourceError('renamedSource', 'missing-key', [key], `no tensor named "${key}" after renaming`);
    return original;
  };
  return {
    keys: () => [...fromOf().keys()],
    has: (key) => fromOf().has(key),
    info: (key): WeightInfo => source.info(from(key)),
    read: (key) => source.read(from(key)),
    origin: (key) => {
      const original = from(key);
      return original === key ? source.origin(original) : `${source.origin(original)} (as ${original})`;
    },
    close: () => source.close(),
  };
}

/**
 * Several sources as one: a key is read from the first source that has it, so a later source fills in what earlier
 * ones lack (a converted checkpoint over random fills, a fine-tuned stage over its base).
 */
export function overlaySource(sources: readonly WeightSource[]): WeightSource {
  const owner = (key: string): WeightSource => {
    const found = sources.find((s) => s.has(key));
    if (!found) throw new WeightSourceError('overlaySource', 'missing-key', [key], `no tensor named "${key}" in any of ${sources.length} source(s)`);
    return found;
  };
  return {
    keys: () => [...new Set(sources.flatMap((s) => s.keys()))],
    has: (key) => sources.some((s) => s.has(key)),
    info: (key) => owner(key).info(key),
    read: (key) => owner(key).read(key),
    origin: (key) => owner(key).origin(key),
    close: () => {
      for (const s of sources) s.close();
    },
  };
}
