import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from './backend.js';
import { WeightsError } from './errors.js';
import { tensorGrowth } from './memory.js';
import { ParameterStore } from './parameter-store.js';
import { Rng } from './random.js';

beforeAll(async () => {
  await initBackend();
});

function store() {
  const s = new ParameterStore('toy', Rng.fromSeed(1));
  s.create('a.weight', [2, 3], { kind: 'normal', std: 0.02 });
  s.create('a.bias', [2], { kind: 'zeros' });
  s.create('ln.weight', [3], { kind: 'ones' }, false);
  s.create('steps', [1], { kind: 'zeros' });
  return s;
}

describe('ParameterStore', () => {
  it('creates parameters with their initialisers, under their checkpoint keys', () => {
    const s = store();
    expect(s.keys()).toEqual(['a.weight', 'a.bias', 'ln.weight', 'steps']);
    expect(Array.from(s.get('a.bias').dataSync())).toEqual([0, 0]);
    expect(Array.from(s.get('ln.weight').dataSync())).toEqual([1, 1, 1]);
    expect(s.get('ln.weight').trainable).toBe(false);
    // The normal init is the store's seeded generator scaled by std, so it is reproducible.
    expect(Array.from(s.get('a.weight').dataSync())).toEqual(Array.from(Rng.fromSeed(1).normalArray(6), (v) => Math.fround(v * 0.02)));
    expect(s.count()).toBe(12);
    expect(s.count((k) => k.startsWith('a.'))).toBe(8);
    expect([...s.select((k) => k.endsWith('.weight')).keys()]).toEqual(['a.weight', 'ln.weight']);
    s.dispose();
  });

  it('uniform init stays inside ±bound', () => {
    const s = new ParameterStore('u', Rng.fromSeed(2));
    const v = s.create('w', [1000], { kind: 'uniform', bound: 0.1 }).dataSync();
    expect(Math.max(...v)).toBeLessThanOrEqual(0.1);
    expect(Math.min(...v)).toBeGreaterThanOrEqual(-0.1);
    expect(Math.max(...v)).toBeGreaterThan(0.09);
    s.dispose();
  });

  it('refuses a key created twice and names an unknown key', () => {
    const s = store();
    expect(() => s.create('a.bias', [2], { kind: 'zeros' })).toThrow('toy: parameter a.bias created twice');
    expect(() => s.get('nope')).toThrow('toy: no parameter nope');
    expect(s.has('a.bias')).toBe(true);
    s.dispose();
  });

  it('loads a matching checkpoint, casting dtypes to the parameter', () => {
    const s = store();
    const tensors = new Map<string, tf.Tensor>([
      ['a.weight', tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3])],
      ['a.bias', tf.tensor1d([7, 8])],
      ['ln.weight', tf.tensor1d([9, 9, 9])],
      ['steps', tf.tensor1d([3], 'int32')],
    ]);
    s.load(tensors);
    expect(Array.from(s.get('a.weight').dataSync())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(s.get('steps').dtype).toBe('float32');
    expect(Array.from(s.get('steps').dataSync())).toEqual([3]);
    tf.dispose([...tensors.values()]);
    s.dispose();
  });

  it('one WeightsError lists every missing, unexpected and mis-shaped key, and nothing is assigned', () => {
    const s = store();
    const tensors = new Map<string, tf.Tensor>([
      ['a.weight', tf.zeros([3, 2])],
      ['a.bias', tf.tensor1d([5, 5])],
      ['extra', tf.zeros([1])],
    ]);
    let error: WeightsError | undefined;
    try {
      s.load(tensors);
    } catch (e) {
      error = e as WeightsError;
    }
    expect(error).toBeInstanceOf(WeightsError);
    expect(error!.code).toBe('WEIGHTS_MISMATCH');
    expect(error!.missing).toEqual(['ln.weight', 'steps']);
    expect(error!.unexpected).toEqual(['extra']);
    expect(error!.misshaped).toEqual([{ key: 'a.weight', expected: [2, 3], actual: [3, 2] }]);
    expect(error!.message).toBe(
      'toy: checkpoint does not match the model: missing 2 key(s): ln.weight, steps; unexpected 1 key(s): extra; ' +
        'mis-shaped 1 key(s): a.weight expected [2, 3] got [3, 2]',
    );
    expect(Array.from(s.get('a.bias').dataSync())).toEqual([0, 0]);
    tf.dispose([...tensors.values()]);
    s.dispose();
  });

  it('allowMissing lets a partial checkpoint load onto fresh parameters', () => {
    const s = store();
    const bias = tf.tensor1d([1, 2]);
    s.load(new Map([['a.bias', bias]]), { allowMissing: (k) => k !== 'a.bias' });
    expect(Array.from(s.get('a.bias').dataSync())).toEqual([1, 2]);
    expect(() => s.load(new Map([['a.bias', bias]]), { allowMissing: (k) => k !== 'steps' })).toThrow('missing 1 key(s): steps');
    bias.dispose();
    s.dispose();
  });

  it('snapshot returns copies that outlive later updates', () => {
    const s = store();
    const snap = s.snapshot((k) => k === 'a.bias');
    s.get('a.bias').assign(tf.tensor1d([4, 4]));
    expect([...snap.keys()]).toEqual(['a.bias']);
    expect(Array.from(snap.get('a.bias')!.dataSync())).toEqual([0, 0]);
    tf.dispose([...snap.values()]);
    s.dispose();
  });

  it('create, load, snapshot and dispose do not leak tensors', () => {
    const weights = new Map<string, tf.Tensor>([['w', tf.ones([4, 4])]]);
    const growth = tensorGrowth(() => {
      const s = new ParameterStore('leak', Rng.fromSeed(3));
      s.create('w', [4, 4], { kind: 'normal', std: 1 });
      s.load(weights);
      const snap = s.snapshot();
      s.dispose();
      return [...snap.values()];
    });
    expect(growth).toBe(0);
    tf.dispose([...weights.values()]);
  });
});
