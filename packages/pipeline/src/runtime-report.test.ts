import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { ffmpegReport, ortReport } from './runtime-report.js';

const saved = { ffmpeg: process.env.BVLLM_FFMPEG, providers: process.env.BVLLM_ORT_PROVIDERS };
afterEach(() => {
  for (const [name, value] of [['BVLLM_FFMPEG', saved.ffmpeg], ['BVLLM_ORT_PROVIDERS', saved.providers]] as const)
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
});

describe('ortReport', () => {
  it('names the installed onnxruntime-node, its CPU provider and the session threads, and times a real MatMul', async () => {
    delete process.env.BVLLM_ORT_PROVIDERS;
    const report = await ortReport({ size: 64, reps: 2 });
    // The version onnxruntime reports is the one of the package @bvllm/onnx resolves.
    const onnxPackage = new URL('../node_modules/@bvllm/onnx/package.json', import.meta.url);
    expect(report.version).toBe((createRequire(onnxPackage)('onnxruntime-node/package.json') as { version: string }).version);
    expect(report.available).toContainEqual({ name: 'cpu', bundled: true });
    expect(report.providers).toEqual(['cpu']);
    expect(report.threads).toBe(availableParallelism());
    expect(report.matmul).toMatchObject({ size: 64, reps: 2, warmup: 1 });
    expect(report.matmul.secondsPerRep).toBeGreaterThan(0);
    expect(report.matmul.gflops).toBeCloseTo((2 * 64 ** 3) / report.matmul.secondsPerRep / 1e9, 6);
  });
});

describe('ffmpegReport', () => {
  it('gives the version of the ffmpeg videos are decoded with', () => {
    delete process.env.BVLLM_FFMPEG;
    const report = ffmpegReport();
    expect(report.error).toBeUndefined();
    expect(report.version).toMatch(/^\S+$/);
  });

  it('says why when BVLLM_FFMPEG names no program, instead of throwing', () => {
    process.env.BVLLM_FFMPEG = '/nonexistent/ffmpeg';
    expect(ffmpegReport()).toEqual({ path: '/nonexistent/ffmpeg', error: expect.stringContaining('ENOENT') });
  });
});
