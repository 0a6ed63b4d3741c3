import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BackendUnavailableError, BvllmError } from './errors.js';
import { tf } from './backend.js';

/** initBackend caches its choice per module instance, so each case loads a fresh copy of backend.ts. */
async function freshInit(env: string | undefined) {
  vi.resetModules();
  if (env === undefined) delete process.env.BVLLM_BACKEND;
  else process.env.BVLLM_BACKEND = env;
  const { initBackend } = await import('./backend.js');
  return initBackend();
}

afterEach(() => {
  delete process.env.BVLLM_BACKEND;
});

describe('initBackend', () => {
  it('BVLLM_BACKEND=cpu forces the cpu backend', async () => {
    const info = await freshInit('cpu');
    expect(info).toMatchObject({ choice: 'cpu', tfjsBackend: 'cpu', forced: true, skipped: [], threads: 1, simd: false });
    expect(tf.getBackend()).toBe('cpu');
  });

  it.each(['gpu', 'node'])('BVLLM_BACKEND=%s fails with BackendUnavailableError when its package is absent', async (name) => {
    const attempt = freshInit(name);
    // A fresh module copy has its own error classes, so match on name and code, as callers across copies do.
    await expect(attempt).rejects.toMatchObject({ name: 'BackendUnavailableError', code: 'BACKEND_UNAVAILABLE', backend: name });
    await expect(attempt).rejects.toThrow(`backend "${name}" is unavailable: @tensorflow/tfjs-node`);
  });

  it('an invalid BVLLM_BACKEND value is refused, naming the valid ones', async () => {
    await expect(freshInit('tpu')).rejects.toThrow('backend "tpu" is unavailable: BVLLM_BACKEND must be one of gpu, node, wasm, cpu, auto');
  });

  it('a failed start is not cached: the next call tries again', async () => {
    vi.resetModules();
    const { initBackend } = await import('./backend.js');
    await expect(initBackend({ backend: 'node' })).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
    await expect(initBackend({ backend: 'cpu' })).resolves.toMatchObject({ choice: 'cpu' });
  });

  it('picks WASM by default here and says why the native backends were skipped', async () => {
    const info = await freshInit(undefined);
    expect(info.choice).toBe('wasm');
    expect(info.tfjsBackend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(info.forced).toBe(false);
    expect(info.threads).toBe(1);
    expect(info.skipped.map((s) => s.choice)).toEqual(['gpu', 'node']);
    expect(info.skipped[0].reason).toContain('@tensorflow/tfjs-node-gpu is not installed');
    expect(info.tfjsVersion).toBe(tf.version_core);
  });

  it('auto is the same as unset', async () => {
    expect((await freshInit('auto')).choice).toBe('wasm');
  });

  it('exactly one tfjs instance: both backends resolve the very tfjs-core file core uses', async () => {
    const fromCore = createRequire(import.meta.url);
    const core = realpathSync(fromCore.resolve('@tensorflow/tfjs-core'));
    for (const backend of ['@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-backend-cpu']) {
      const fromBackend = createRequire(fromCore.resolve(backend));
      expect(realpathSync(fromBackend.resolve('@tensorflow/tfjs-core')), backend).toBe(core);
    }
    // And at run time: a tensor made by a WASM kernel is an instance of the Tensor class `tf` exports.
    await freshInit('wasm');
    const y = tf.add(tf.scalar(1), tf.scalar(2));
    expect(y).toBeInstanceOf(tf.Tensor);
    expect(tf.engine().backend).toBe(tf.findBackend('wasm'));
    tf.dispose(y);
  });

  it('errors carry their code, and isInstance works on the marker, not the class', () => {
    const error = new BackendUnavailableError('gpu', 'CUDA did not load');
    expect(BvllmError.isInstance(error)).toBe(true);
    expect(BvllmError.isInstance(new Error('x'))).toBe(false);
    expect(error.name).toBe('BackendUnavailableError');
    expect(error.message).toBe('backend "gpu" is unavailable: CUDA did not load');
  });
});
