import { join } from 'node:path';
import { loadTrainingConfig } from '@bvllm/trainer';
import { saveModel, trainBvllm, trainTinyModel } from '@bvllm/pipeline';
import { initBackend } from '@bvllm/core';
import type { Command } from 'commander';
import type { CliOutput } from '../run-cli.js';
import { nonNegativeInt, positiveInt } from '../flags.js';
import { loadModelOption } from './model-option.js';

export function registerTrain(program: Command, output: CliOutput): void {
  program
    .command('train')
    .description('run training stage 1 or 2 (spec §2) on a VideoLLaMA2-format dataset and write the trained model folder')
    .requiredOption('--config <yaml>', 'stage config (stage: stage1|stage2, data: {annotations, folder}, lr, …)')
    .requiredOption('--out <dir>', 'where checkpoints, metrics.jsonl, loss.png and the trained model go')
    .option('--model <dir>', 'the model to start from (default: bvllm-tiny)')
    .option('--resume <dir>', 'a checkpoint folder, or "latest" for the newest under --out')
    .action(async (flags: { config: string; out: string; model?: string; resume?: string }) => {
      const config = loadTrainingConfig(flags.config);
      const modelDir = flags.model;
      const model = await loadModelOption(modelDir);
      try {
        const result = await trainBvllm(model, config, { outDir: flags.out, resume: flags.resume, featureCacheDir: join(flags.out, 'features') });
        saveModel(model, join(flags.out, 'model'), modelDir ?? (await import('@bvllm/pipeline')).defaultModelDir());
        output.out(`${config.stage}: ${result.step}/${result.totalSteps} updates, ${result.skipped} skipped, loss ${result.lossHistory.at(-1)?.toFixed(4)}; model in ${join(flags.out, 'model')}\n`);
      } finally {
        model.dispose();
      }
    });

  program
    .command('train-tiny')
    .description('reproduce the default model bvllm-tiny from a `bvllm synth` folder (see its MODEL_CARD.md)')
    .requiredOption('--data <dir>', 'a `bvllm synth` output folder')
    .requiredOption('--out <dir>', 'the model folder to write')
    .option('--work <dir>', 'checkpoints and intermediate files', 'bvllm-tiny-work')
    .option('--seed <n>', 'seed of initialisation, data order and noise', nonNegativeInt, 0)
    .option('--base <dir>', "reuse a run's pre-trained vision tower and LLM (<work>/base) and run only stages 1 and 2")
    .option('--stage1-epochs <n>', 'epochs of stage 1', positiveInt)
    .option('--stage2-epochs <n>', 'epochs of stage 2', positiveInt)
    .option('--frame-select <kind>', 'frame-selection kind for ablations (qformer-gumbel, uniform, all)')
    .option('--token-merge <kind>', 'temporal-merge kind for ablations (row-cosine, none)')
    .option('--spatial-sample <kind>', 'spatial-sampling kind for ablations (qformer, pool, none)')
    .action(async (flags: { data: string; out: string; work: string; seed: number; base?: string; stage1Epochs?: number; stage2Epochs?: number; frameSelect?: string; tokenMerge?: string; spatialSample?: string }) => {
      await initBackend();
      const { tinyAblation } = await import('@bvllm/pipeline');
      const model = await trainTinyModel({
        dataDir: flags.data,
        outDir: flags.out,
        workDir: flags.work,
        seed: flags.seed,
        base: flags.base,
        stage1Epochs: flags.stage1Epochs,
        stage2Epochs: flags.stage2Epochs,
        overrides: tinyAblation({ frameSelect: flags.frameSelect, tokenMerge: flags.tokenMerge, spatialSample: flags.spatialSample }),
        log: (line) => output.err(`${line}\n`),
      });
      model.dispose();
      output.out(`model written to ${flags.out}\n`);
    });
}
