/**
 * A checkpoint must survive a power cut (issue #20 item 8): every file and the temporary folder are fsynced before
 * the rename that publishes them, and the run folder after it. The real fs functions run; the spies only record the
 * order of the calls, by path.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend, tf } from '@bvllm/core';

const calls: string[] = [];
const pathOfFd = new Map<number, string>();

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const wrapped = {
    ...fs,
    openSync: (path: string, ...rest: unknown[]) => {
      const fd = (fs.openSync as (...a: unknown[]) => number)(path, ...rest);
      pathOfFd.set(fd, String(path));
      return fd;
    },
    fsyncSync: (fd: number) => {
      calls.push(`fsync ${pathOfFd.get(fd)}`);
      fs.fsyncSync(fd);
    },
    renameSync: (from: string, to: string) => {
      calls.push(`rename ${from} -> ${to}`);
      fs.renameSync(from, to);
    },
  };
  return { ...wrapped, default: wrapped };
});

const { CHECKPOINT_FORMAT, CHECKPOINT_VERSION, saveCheckpoint } = await import('./checkpoint.js');

beforeAll(async () => {
  await initBackend();
});

describe('saveCheckpoint durability', () => {
  it('fsyncs each file and the temporary folder before renaming it into place, then the run folder', () => {
    const outDir = mkdtempSync(join(tmpdir(), 'bvllm-ckpt-sync-'));
    const weights = new Map([['head.weight', tf.tensor2d([[1, 2]])]]);
    const path = saveCheckpoint(outDir, {
      weights,
      optimizer: { step: 1, expAvg: new Map(), expAvgSq: new Map() },
      state: {
        format: CHECKPOINT_FORMAT,
        version: CHECKPOINT_VERSION,
        stage: 'stage1',
        step: 1,
        totalSteps: 2,
        cursor: 1,
        rng: { seed: 1, stream: 0, counter: 0 },
        lossHistory: [1],
        skipped: 0,
        run: { seed: 1, microBatchSize: 1, gradientAccumulationSteps: 1, datasetLength: 1 },
      },
    });
    tf.dispose([...weights.values()]);
    const tmp = join(outDir, `.step-00000001.tmp-${process.pid}`);
    const publish = calls.indexOf(`rename ${tmp} -> ${path}`);
    expect(publish).toBeGreaterThan(0);
    for (const file of ['trainable.safetensors', 'optimizer.safetensors', 'trainer-state.json'])
      expect(calls.indexOf(`fsync ${join(tmp, file)}`), file).toBeGreaterThanOrEqual(0);
    expect(calls.slice(0, publish).filter((c) => c.startsWith('fsync')).at(-1)).toBe(`fsync ${tmp}`);
    expect(calls.slice(publish + 1)).toContain(`fsync ${outDir}`);
    for (const file of ['trainable.safetensors', 'optimizer.safetensors', 'trainer-state.json'])
      expect(calls.indexOf(`fsync ${join(tmp, file)}`)).toBeLessThan(publish);
  });
});
