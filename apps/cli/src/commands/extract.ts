import { FeatureCache, extractFeatures, samplingOptionsSchema } from '@bvllm/vision-encoder';
import type { Command } from 'commander';
import type { CliOutput } from '../run-cli.js';
import { extractOnQueue } from '../queue-commands.js';
import { loadModelOption } from './model-option.js';

export function registerExtract(program: Command, output: CliOutput): void {
  program
    .command('extract')
    .description("precompute a folder's frame features into a feature cache (as the reference's extract.py, at 1 fps)")
    .argument('<dir>', 'a folder of videos')
    .requiredOption('--cache <dir>', 'the feature cache folder')
    .option('--model <dir>', 'a B-VLLM model folder whose vision tower encodes (default: bvllm-tiny)')
    .option('--redis <url>', "enqueue on this Redis for `bvllm worker`s (into the inference session's cache format)")
    .option('--detach', 'with --redis: print the run id and return (then `bvllm jobs status ID`)')
    .action(async (dir: string, flags: { cache: string; model?: string; redis?: string; detach?: boolean }) => {
      if (flags.redis) return extractOnQueue(dir, { ...flags, redis: flags.redis }, output);
      const model = await loadModelOption(flags.model);
      try {
        const results = await extractFeatures(dir, model.vision, new FeatureCache(flags.cache), {
          sampling: samplingOptionsSchema.parse(model.config.vision.sampling),
          batchSize: model.config.vision.batchSize,
          onVideo: (path, i, total, hit) => output.err(`${i + 1}/${total} ${hit ? 'cached' : 'encoded'} ${path}\n`),
        });
        output.out(`${results.length} videos, ${results.filter((r) => !r.hit).length} newly encoded, in ${flags.cache}\n`);
      } finally {
        model.dispose();
      }
    });
}
