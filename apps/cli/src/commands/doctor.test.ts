import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { DoctorReport } from './doctor.js';

/** The built bin, run as users run it (the package's test script builds it first). */
const bin = fileURLToPath(new URL('../../dist/bvllm.js', import.meta.url));

function bvllm(args: string[], env: Record<string, string> = {}) {
  const { BVLLM_BACKEND: _, ...inherited } = process.env;
  const result = spawnSync(process.execPath, [bin, ...args], { env: { ...inherited, ...env }, encoding: 'utf8', timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('bvllm doctor', () => {
  it('--json reports backend, versions, threads, SIMD and a measured 1024³ matmul', () => {
    const { code, stdout, stderr } = bvllm(['doctor', '--json']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as DoctorReport;
    expect(report.backend).toMatchObject({ choice: 'wasm', tfjsBackend: 'wasm', forced: false });
    expect(report.backend.skipped.map((s) => s.choice)).toEqual(['gpu', 'node']);
    expect(report.backend.skipped[1].reason).toContain('@tensorflow/tfjs-node');
    expect(report.tfjsVersion).toMatch(/^4\.\d+\.\d+$/);
    expect(report.nodeVersion).toBe(process.versions.node);
    expect(report.platform).toBe(`${process.platform}-${process.arch}`);
    expect(report.threads).toBe(1);
    expect(report.cpus).toBeGreaterThanOrEqual(1);
    expect(typeof report.simd).toBe('boolean');
    expect(report.matmul).toMatchObject({ size: 1024, reps: 3, warmup: 1 });
    expect(report.matmul.secondsPerRep).toBeGreaterThan(0);
    expect(report.matmul.gflops).toBeCloseTo((2 * 1024 ** 3) / report.matmul.secondsPerRep / 1e9, 6);
    // onnxruntime, the default inference engine, measured on the same matmul.
    const ortPackage = createRequire(new URL('../../../../packages/onnx/package.json', import.meta.url))('onnxruntime-node/package.json') as { version: string };
    expect(report.onnxruntime.version).toBe(ortPackage.version);
    expect(report.onnxruntime.available).toContainEqual({ name: 'cpu', bundled: true });
    expect(report.onnxruntime.providers).toEqual(['cpu']);
    expect(report.onnxruntime.threads).toBe(availableParallelism());
    expect(report.onnxruntime.matmul).toMatchObject({ size: 1024, reps: 3, warmup: 1 });
    expect(report.onnxruntime.matmul.gflops).toBeCloseTo((2 * 1024 ** 3) / report.onnxruntime.matmul.secondsPerRep / 1e9, 6);
    // The ffmpeg videos are decoded with, and its version as it prints it.
    const ffmpeg = spawnSync(report.ffmpeg.path, ['-version'], { encoding: 'utf8' }).stdout;
    expect(ffmpeg).toContain(`ffmpeg version ${report.ffmpeg.version} `);
  });

  it('prints a readable report by default, honouring BVLLM_BACKEND', () => {
    const { code, stdout } = bvllm(['doctor', '--size', '64', '--reps', '1'], { BVLLM_BACKEND: 'cpu' });
    expect(code).toBe(0);
    expect(stdout).toMatch(/^backend +cpu \(tfjs "cpu", forced by BVLLM_BACKEND\)$/m);
    expect(stdout).toMatch(/^matmul +[\d.]+ GFLOP\/s \(64³ float32, [\d.]+ ms each, mean of 1 after 1 warm-up\)$/m);
    expect(stdout).toMatch(/^node +\d+\.\d+\.\d+ /m);
    expect(stdout).toMatch(/^onnxruntime +\d+\.\d+\.\d+ \(onnxruntime-node\), providers in use: cpu; available: .*cpu/m);
    expect(stdout).toMatch(/^ort threads +\d+ intra-op$/m);
    expect(stdout).toMatch(/^ort matmul +[\d.]+ GFLOP\/s \(64³ float32, [\d.]+ ms each, mean of 1 after 1 warm-up\)$/m);
    expect(stdout).toMatch(/^ffmpeg +\S+ \(\S+\)$/m);
  });

  it('reports an ffmpeg that cannot run instead of failing', () => {
    const { code, stdout } = bvllm(['doctor', '--size', '16', '--reps', '1'], { BVLLM_FFMPEG: '/nonexistent/ffmpeg' });
    expect(code).toBe(0);
    expect(stdout).toMatch(/^ffmpeg +not usable: .*ENOENT.* \(\/nonexistent\/ffmpeg; set BVLLM_FFMPEG\)$/m);
  });

  it.each([
    [['doctor'], { BVLLM_BACKEND: 'node' }, /^bvllm: error BACKEND_UNAVAILABLE: backend "node" is unavailable: .*tfjs-node.*\n$/],
    [['doctor', '--size', '0'], {}, /^error: option '--size <n>' argument '0' is invalid\. expected a positive integer\n$/],
    [['frobnicate'], {}, /^error: unknown command 'frobnicate'\n$/],
  ])('bvllm %j fails with one clear line and a non-zero exit', (args, env, message) => {
    const { code, stdout, stderr } = bvllm(args, env);
    expect(code).not.toBe(0);
    expect(stdout).toBe('');
    expect(stderr).toMatch(message);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});
