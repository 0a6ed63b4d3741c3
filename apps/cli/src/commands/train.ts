import { join } from 'node:path';
import { loadTrainingConfig } from '@bvllm/trainer';
import { defaultModelDir, tinyAblation, trainTinyModel } from '@bvllm/bvllm-tiny';
import { saveModel, trainBvllm } from '@bvllm/pipeline';
import { BvllmError, initBackend } from '@bvllm/core';
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
        saveModel(model, join(flags.out, 'model'), modelDir ?? defaultModelDir());
        output.out(`${config.stage}: ${result.step}/${result.totalSteps} updates, ${result.skipped} skipped, loss ${result.lossHistory.at(-1)?.toFixed(4)}; model in ${join(flags.out, 'model')}\n`);
      } finally {
        model.dispose();
      }
    });

  program
    .command('train-tiny')
    .description('train the default model bvllm-tiny from a `bvllm synth` folder (see its MODEL_CARD.md); Ctrl-C checkpoints, --resume continues')
    .requiredOption('--data <dir>', 'a `bvllm synth` output folder')
    .requiredOption('--out <dir>', 'the model folder to write')
    .option('--work <dir>', 'checkpoints, tokenizers and intermediate files of the run', 'bvllm-tiny-work')
    .option('--seed <n>', 'seed of initialisation, data order and noise', nonNegativeInt, 0)
    .option('--base <dir>', "a model folder whose tokenizers (kept fixed), vision tower and LLM are reused (<work>/base of a full run); runs only the Q-Former pre-training, alignment and stages 1 and 2")
    .option('--resume', 'continue the run in --work where it stopped (same data, seed and budgets)')
    .option('--vision-steps <n>', 'steps of the vision tower pre-training (default 12000)', positiveInt)
    .option('--pretrain-videos <n>', 'training videos whose frames the pre-training decodes (default 1000)', positiveInt)
    .option('--lm-epochs <n>', 'epochs of the LLM warm-up reading captions (default 3)', positiveInt)
    .option('--label-epochs <n>', 'epochs of the LLM warm-up reading label tokens (default 2)', positiveInt)
    .option('--sampler-steps <n>', 'steps of the spatial Q-Former pre-training (default 4000)', positiveInt)
    .option('--align-steps <n>', 'steps of the alignment with the label tokens (default 3000)', positiveInt)
    .option('--stage1-epochs <n>', 'epochs of stage 1 (default 2)', positiveInt)
    .option('--stage2-epochs <n>', 'epochs of stage 2 (default 1)', positiveInt)
    .option('--checkpoint-every <n>', 'steps between checkpoints of every phase (default 200)', positiveInt)
    .option('--frame-select <kind>', 'frame-selection kind for ablations (qformer-gumbel, uniform, all)')
    .option('--token-merge <kind>', 'temporal-merge kind for ablations (row-cosine, none)')
    .option('--spatial-sample <kind>', 'spatial-sampling kind for ablations (qformer, pool, none)')
    .action(async (flags: TrainTinyFlags) => {
      await initBackend();
      const interrupt = new AbortController();
      const onSignal = () => interrupt.abort(new Error('SIGINT'));
      process.once('SIGINT', onSignal);
      try {
        const model = await trainTinyModel({
          dataDir: flags.data,
          outDir: flags.out,
          workDir: flags.work,
          seed: flags.seed,
          base: flags.base,
          resume: flags.resume,
          visionSteps: flags.visionSteps,
          pretrainVideos: flags.pretrainVideos,
          lmEpochs: flags.lmEpochs,
          labelEpochs: flags.labelEpochs,
          samplerSteps: flags.samplerSteps,
          alignSteps: flags.alignSteps,
          stage1Epochs: flags.stage1Epochs,
          stage2Epochs: flags.stage2Epochs,
          checkpointEvery: flags.checkpointEvery,
          overrides: tinyAblation({ frameSelect: flags.frameSelect, tokenMerge: flags.tokenMerge, spatialSample: flags.spatialSample }),
          signal: interrupt.signal,
          log: (line) => output.err(`${line}\n`),
          progress: { isTTY: process.stderr.isTTY, write: (text) => output.err(text) },
        });
        model.dispose();
        output.out(`model written to ${flags.out}\n`);
      } catch (error) {
        if (BvllmError.isInstance(error) && error.code === 'ABORTED') output.err(`train-tiny: stopped with checkpoints in ${flags.work}; run the same command with --resume to continue\n`);
        throw error;
      } finally {
        process.removeListener('SIGINT', onSignal);
      }
    });
}

interface TrainTinyFlags {
  data: string;
  out: string;
  work: string;
  seed: number;
  base?: string;
  resume?: boolean;
  visionSteps?: number;
  pretrainVideos?: number;
  lmEpochs?: number;
  labelEpochs?: number;
  samplerSteps?: number;
  alignSteps?: number;
  stage1Epochs?: number;
  stage2Epochs?: number;
  checkpointEvery?: number;
  frameSelect?: string;
  tokenMerge?: string;
  spatialSample?: string;
}
