import { availableParallelism } from 'node:os';
import { initBackend, measureMatmul, type BackendInfo, type MatmulThroughput } from '@bvllm/core';
import { ffmpegReport, ortReport, type FfmpegReport, type OrtReport } from '@bvllm/pipeline';
import type { Command } from 'commander';
import { positiveInt } from '../flags.js';
import type { CliOutput } from '../run-cli.js';

/** What `bvllm doctor --json` prints; field names are a stable interface for scripts and bug reports. */
export interface DoctorReport {
  backend: Pick<BackendInfo, 'choice' | 'tfjsBackend' | 'forced' | 'skipped'>;
  tfjsVersion: string;
  nodeVersion: string;
  platform: string;
  /** Threads the backend computes with, and the CPUs the machine offers. */
  threads: number;
  cpus: number;
  simd: boolean;
  matmul: MatmulThroughput & { warmup: number };
  /** onnxruntime-node, the default inference engine: version, providers, threads and a timed MatMul of the same size. */
  onnxruntime: OrtReport;
  /** The ffmpeg that decodes videos: path and version, or why it could not run. */
  ffmpeg: FfmpegReport;
}

export function registerDoctor(program: Command, output: CliOutput): void {
  program
    .command('doctor')
    .description('report the tensor backend (and why faster ones were skipped), onnxruntime and ffmpeg, versions, and measured matmul speed on both engines')
    .option('--json', 'print the report as JSON')
    .option('--size <n>', 'matmul size n (n × n · n × n, float32)', positiveInt, 1024)
    .option('--reps <n>', 'timed repetitions after one warm-up', positiveInt, 3)
    .action(async (options: { json?: boolean; size: number; reps: number }) => {
      const report = await doctor(options.size, options.reps);
      output.out(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    });
}

async function doctor(size: number, reps: number): Promise<DoctorReport> {
  const info = await initBackend();
  const warmup = 1;
  const matmul = await measureMatmul(size, { warmup, reps });
  const onnxruntime = await ortReport({ size, reps, warmup });
  return {
    backend: { choice: info.choice, tfjsBackend: info.tfjsBackend, forced: info.forced, skipped: info.skipped },
    tfjsVersion: info.tfjsVersion,
    nodeVersion: process.versions.node,
    platform: `${process.platform}-${process.arch}`,
    threads: info.threads,
    cpus: availableParallelism(),
    simd: info.simd,
    matmul: { ...matmul, warmup },
    onnxruntime,
    ffmpeg: ffmpegReport(),
  };
}

function formatReport(report: DoctorReport): string {
  const { backend, matmul, onnxruntime: ort, ffmpeg } = report;
  const providers = ort.available.map((p) => `${p.name}${p.bundled ? '' : ' (needs its install)'}`).join(', ');
  const how = backend.forced ? 'forced by BVLLM_BACKEND' : 'auto';
  const lines = [
    ['backend', `${backend.choice} (tfjs "${backend.tfjsBackend}", ${how})`],
    ...backend.skipped.map((s) => [`  skipped ${s.choice}`, s.reason]),
    ['tfjs', report.tfjsVersion],
    ['node', `${report.nodeVersion} (${report.platform})`],
    ['threads', `${report.threads} of ${report.cpus} CPUs`],
    ['simd', report.simd ? 'yes' : 'no'],
    [
      'matmul',
      `${matmul.gflops.toFixed(2)} GFLOP/s (${matmul.size}³ float32, ${(matmul.secondsPerRep * 1000).toFixed(1)} ms each, ` +
        `mean of ${matmul.reps} after ${matmul.warmup} warm-up)`,
    ],
    ['onnxruntime', `${ort.version} (onnxruntime-node), providers in use: ${ort.providers.join(', ')}; available: ${providers}`],
    ['ort threads', `${ort.threads} intra-op`],
    [
      'ort matmul',
      `${ort.matmul.gflops.toFixed(2)} GFLOP/s (${ort.matmul.size}³ float32, ${(ort.matmul.secondsPerRep * 1000).toFixed(1)} ms each, ` +
        `mean of ${ort.matmul.reps} after ${ort.matmul.warmup} warm-up)`,
    ],
    ['ffmpeg', ffmpeg.version ? `${ffmpeg.version} (${ffmpeg.path})` : `not usable: ${ffmpeg.error} (${ffmpeg.path}; set BVLLM_FFMPEG)`],
  ];
  const width = Math.max(...lines.map(([k]) => k.length));
  return lines.map(([k, v]) => `${k.padEnd(width)}  ${v}\n`).join('');
}
