import type { ParameterStore } from './parameter-store.js';
import { WeightSourceError } from './weight-source-error.js';
import type { WeightSource } from './weight-source.js';

/**
 * The current values of a tfjs ParameterStore as a WeightSource (a model trained in this process, exported without
 * a round trip through disk). Each `read` copies one variable out of the backend; closing leaves the store alone,
 * since the stage that created it disposes it.
 */
export function storeSource(store: ParameterStore): WeightSource {
  const variable = (key: string) => {
    if (!store.has(key)) throw new WeightSourceError(`store:${store.name}`, 'missing-key', [key], `no parameter named "${key}"`);
    return store.get(key);
  };
  return {
    keys: () => store.keys(),
    has: (key) => store.has(key),
    info: (key) => ({ dtype: 'F32', shape: [...variable(key).shape] }),
    read: (key) => {
      const v = variable(key);
      if (v.dtype !== 'float32') throw new WeightSourceError(`store:${store.name}`, 'not-float', [key], `parameter "${key}" is ${v.dtype}, not a float weight`);
      // A copy: dataSync may hand back the backend's own buffer, and the caller may keep or mutate what it reads.
      return new Float32Array(v.dataSync() as Float32Array);
    },
    origin: () => `store:${store.name}`,
    close: () => {},
  };
}
