import { StageRegistry } from '@bvllm/core';
import { allSelectConfig, qformerGumbelConfig, uniformSelectConfig } from './config.js';
import { AllSelect, UniformSelect } from './fixed-select.js';
import { createQFormerGumbelSelect } from './qformer-gumbel-select.js';
import type { FrameSelectStage } from './types.js';

/** The `frame-select` slot: `qformer-gumbel` (official), `uniform` and `all` (ablation baselines). Needs `dims.Cv`. */
export const frameSelectRegistry = new StageRegistry<FrameSelectStage>('frame-select')
  .register('qformer-gumbel', {
    schema: qformerGumbelConfig,
    create: createQFormerGumbelSelect,
    description: 'text-conditioned temporal Q-Former + Gumbel-softmax over frames (B-VLLM, spec §1.1 (a))',
  })
  .register('uniform', {
    schema: uniformSelectConfig,
    create: (config, deps) => new UniformSelect(config, deps),
    description: 'K evenly spaced frames, ignoring the question (VideoLLaMA2-style baseline)',
  })
  .register('all', {
    schema: allSelectConfig,
    create: (config, deps) => new AllSelect(config, deps),
    description: 'every frame, no selection (K = T)',
  });
