import { generateBenchmark } from '@bvllm/synth';
import type { Command } from 'commander';
import { progressLine } from '../progress-line.js';
import type { CliOutput } from '../run-cli.js';
import { nonNegativeInt, positiveInt } from '../flags.js';

export function registerSynth(program: Command, output: CliOutput): void {
  program
    .command('synth')
    .description('generate the seeded synthetic video-QA benchmark (mp4 videos + VideoLLaMA2-format splits)')
    .requiredOption('--out <dir>', 'output folder')
    .option('--seed <n>', 'seed; the same seed gives identical output', nonNegativeInt, 0)
    .option('--train <n>', 'training questions', positiveInt, 300)
    .option('--val <n>', 'validation questions', nonNegativeInt, 50)
    .option('--test <n>', 'test questions', nonNegativeInt, 100)
    .option('--size <px>', 'frame size in pixels', positiveInt, 64)
    .option('--fps <n>', 'frame rate of the rendered videos', positiveInt, 4)
    .option('--long', 'long videos (10 s, 1 min, 10 min) for latency benchmarks')
    .action(async (flags: { out: string; seed: number; train: number; val: number; test: number; size: number; fps: number; long?: boolean }) => {
      const report = progressLine('videos', output);
      const summary = await generateBenchmark({
        outDir: flags.out,
        seed: flags.seed,
        counts: { train: flags.train, val: flags.val, test: flags.test },
        size: flags.size,
        fps: flags.fps,
        long: flags.long ?? false,
        onProgress: ({ done, total }) => report(done, total),
      });
      output.out(`${summary.videos} videos, samples ${JSON.stringify(summary.samples)} in ${summary.outDir} (${summary.videosPerSec.toFixed(1)} videos/s)\n`);
    });
}
