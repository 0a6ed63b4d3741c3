/**
 * What `bvllm doctor` reports about the two engines inference needs besides tfjs (issue #20 item 6): onnxruntime,
 * which runs every module by default, and ffmpeg, which decodes every video. Measured, not assumed: the matmul
 * figure is a timed MatMul graph on the same onnxruntime build and options the sessions use.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { GraphBuilder, createSession, encodeModel, ort, type ExecutionProvider } from '@bvllm/onnx';
import { ffmpegPath } from '@bvllm/vision-encoder';
import { resolveOrtOptions } from './inference/ort-options.js';

/** onnxruntime-node as an InferenceSession opens it. */
export interface OrtReport {
  /** The onnxruntime-node package version (the native library has the same). */
  version: string;
  /** Execution providers this build of onnxruntime-node can load (`bundled: false`: needs an extra install). */
  available: { name: string; bundled: boolean }[];
  /** Providers sessions are opened with: `BVLLM_ORT_PROVIDERS`, else `cpu`. */
  providers: ExecutionProvider[];
  /** Intra-op threads sessions use (every core unless set). */
  threads: number;
  /** A float32 `[n, n] · [n, n]` MatMul timed on those options: seconds per run after `warmup` runs, mean of `reps`. */
  matmul: { size: number; reps: number; warmup: number; secondsPerRep: number; gflops: number };
}

/** Versions of onnxruntime-node, its providers and threads, and a measured matmul throughput. */
export async function ortReport(options: { size?: number; reps?: number; warmup?: number } = {}): Promise<OrtReport> {
  const { size = 1024, reps = 3, warmup = 1 } = options;
  const resolved = resolveOrtOptions();
  const providers = [...(resolved.executionProviders ?? ['cpu'])];
  const threads = resolved.threads ?? availableParallelism();
  const g = new GraphBuilder('doctor-matmul');
  const x = g.input('x', 'float32', [size, size]);
  // Any finite values do: the kernel's speed does not depend on them.
  const w = g.initializer('w', Float32Array.from({ length: size * size }, (_, i) => ((i % 13) - 6) / 13), [size, size]);
  g.output('y', 'float32', [size, size], g.op.matMul(x, w));
  // On the calling thread: the figure is the kernel's rate, without a worker's copies of the feeds.
  const session = await createSession(encodeModel(g), { threads, executionProviders: providers, thread: 'main' });
  try {
    const feeds = { x: new ort.Tensor('float32', Float32Array.from({ length: size * size }, (_, i) => ((i % 7) - 3) / 7), [size, size]) };
    for (let i = 0; i < warmup; i++) await session.run(feeds);
    const start = performance.now();
    for (let i = 0; i < reps; i++) await session.run(feeds);
    const secondsPerRep = (performance.now() - start) / 1000 / reps;
    return {
      version: ort.env.versions.node ?? ort.env.versions.common ?? 'unknown',
      available: ort.listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled })),
      providers,
      threads,
      matmul: { size, reps, warmup, secondsPerRep, gflops: (2 * size ** 3) / secondsPerRep / 1e9 },
    };
  } finally {
    await session.release();
  }
}

/** The ffmpeg videos are decoded with: its path (`BVLLM_FFMPEG` or the bundled one) and version, or why it did not run. */
export interface FfmpegReport {
  path: string;
  /** The version token of `ffmpeg -version` (`6.1.1`, `n7.0`, a git build's `N-…`). */
  version?: string;
  /** Set when ffmpeg could not be run; `version` is then absent. */
  error?: string;
}

/** Runs `ffmpeg -version` (10 s at most). */
export function ffmpegReport(): FfmpegReport {
  const path = ffmpegPath();
  const run = spawnSync(path, ['-hide_banner', '-version'], { encoding: 'utf8', timeout: 10_000 });
  if (run.error) return { path, error: run.error.message };
  const version = /^ffmpeg version (\S+)/m.exec(run.stdout)?.[1];
  return version ? { path, version } : { path, error: `unexpected output of ${path} -version (exit ${run.status})` };
}
