import type * as tf from '@tensorflow/tfjs-core';

/**
 * One rule of a checkpoint key table: anchored regex, first match wins. A rule drops the key, renames it (a `$1`
 * style replacement), and/or transforms the tensor's layout; the reason goes in a comment beside the rule.
 */
export interface KeyRule {
  match: RegExp;
  drop?: boolean;
  rename?: string;
  transform?: (tensor: tf.Tensor) => tf.Tensor;
}

/** Maps a checkpoint key through `rules`: `undefined` if dropped, else the new key and the matching rule index. */
export function mapKey(key: string, rules: readonly KeyRule[]): { key: string; rule: number } | undefined {
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i];
    if (!rule.match.test(key)) continue;
    if (rule.drop) return undefined;
    return { key: rule.rename !== undefined ? key.replace(rule.match, rule.rename) : key, rule: i };
  }
  return { key, rule: -1 };
}

/**
 * Applies a key table to a whole checkpoint: renamed keys, transformed tensors (inputs that were transformed are
 * disposed), dropped keys removed. Also reports which rules were used, so a test can prove none is dead.
 */
export function applyKeyRules(tensors: ReadonlyMap<string, tf.Tensor>, rules: readonly KeyRule[]): { tensors: Map<string, tf.Tensor>; usedRules: Set<number> } {
  const out = new Map<string, tf.Tensor>();
  const usedRules = new Set<number>();
  for (const [key, tensor] of tensors) {
    for (let i = 0; i < rules.length; i++) if (rules[i].match.test(key)) {
      usedRules.add(i);
      break;
    }
    const mapped = mapKey(key, rules);
    if (!mapped) {
      tensor.dispose();
      continue;
    }
    const rule = rules[mapped.rule];
    if (rule?.transform) {
      out.set(mapped.key, rule.transform(tensor));
      tensor.dispose();
    } else out.set(mapped.key, tensor);
  }
  return { tensors: out, usedRules };
}
