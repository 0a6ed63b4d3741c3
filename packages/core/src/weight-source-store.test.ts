import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from './backend.js';
import { ParameterStore } from './parameter-store.js';
import { Rng } from './random.js';
import { WeightSourceError } from './weight-source-error.js';
import { storeSource } from './weight-source-store.js';

beforeAll(async () => {
  await initBackend();
});

describe('storeSource', () => {
  it('reads the current values of a store as fresh float32 copies', () => {
    const store = new ParameterStore('toy', Rng.fromSeed(1));
    const w = store.create('w', [2, 3], { kind: 'normal', std: 0.02 });
    store.create('b', [2], { kind: 'zeros' });
    const source = storeSource(store);
    expect(source.keys()).toEqual(['w', 'b']);
    expect(source.info('w')).toEqual({ dtype: 'F32', shape: [2, 3] });
    expect(source.origin('w')).toBe('store:toy');
    // After an in-place update, read gives the new values (a training step between exports).
    w.assign(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]));
    const read = source.read('w');
    expect(read).toEqual(Float32Array.of(1, 2, 3, 4, 5, 6));
    read[0] = 42;
    expect(w.dataSync()[0]).toBe(1);
    expect(() => source.read('nope')).toThrow(WeightSourceError);
    expect(() => source.info('nope')).toThrow('no parameter named "nope"');
    source.close();
    expect(w.isDisposed).toBe(false);
    store.dispose();
  });
});
