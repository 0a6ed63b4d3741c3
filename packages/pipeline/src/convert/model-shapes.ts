/**
 * Every weight of a B-VLLM, by model-folder checkpoint key, from its config alone: each package's shape-only list
 * (`parameter-shapes.ts`) under the keys `BvllmModel` gathers them (`vision_tower.*`, `vlm_att_*`, projector,
 * `model.*`, LoRA's PEFT keys). Nothing is built, so the paper config (8.8 B parameters) plans in milliseconds.
 */
import { frameSelectRegistry, frameSelectParameterShapes, type FrameSelectConfig } from '@bvllm/frame-select';
import { loraConfig, loraParameterShapes, parseQwen2Config, projectorConfig, projectorParameterShapes, qwen2ParameterShapes, type Qwen2Config } from '@bvllm/llm-bridge';
import { spatialSampleOutDim, spatialSampleParameterShapes, spatialSampleRegistry, type SpatialSampleConfig } from '@bvllm/spatial-sample';
import { vitConfigSchema, vitParameterShapes, type VitConfig } from '@bvllm/vision-encoder';
import { parseConfig } from '@bvllm/core';
import { withSlot, type PipelineConfig } from '../pipeline-config.js';

/** The vision tower's keys inside a model folder: the HF vision layout under this prefix. */
export const VISION_PREFIX = 'vision_tower.';

/** The parsed configs of every module that holds weights. */
export interface ModuleConfigs {
  vit: VitConfig;
  frameSelect: FrameSelectConfig;
  spatialSample: SpatialSampleConfig;
  projector: ReturnType<typeof projectorConfig.parse>;
  llm: Qwen2Config;
  lora?: ReturnType<typeof loraConfig.parse>;
}

export function moduleConfigs(config: PipelineConfig): ModuleConfigs {
  return {
    vit: withSlot('vision.vit', () => parseConfig(vitConfigSchema, config.vision.vit, 'vision encoder config')),
    frameSelect: withSlot('frameSelect', () => frameSelectRegistry.parse(config.frameSelect) as FrameSelectConfig),
    spatialSample: withSlot('spatialSample', () => spatialSampleRegistry.parse(config.spatialSample) as SpatialSampleConfig),
    projector: withSlot('projector', () => parseConfig(projectorConfig, config.projector, 'projector')),
    llm: withSlot('llm', () => parseQwen2Config(config.llm)),
    lora: config.lora ? withSlot('lora', () => parseConfig(loraConfig, config.lora, 'lora')) : undefined,
  };
}

/** `[key, shape]` of every weight the model folder of `config` holds, in the order `BvllmModel` gathers them. */
export function modelParameterShapes(config: PipelineConfig): Map<string, number[]> {
  const m = moduleConfigs(config);
  const cv = m.vit.hiddenSize;
  return new Map([
    ...vitParameterShapes(m.vit, VISION_PREFIX),
    ...frameSelectParameterShapes(m.frameSelect, cv),
    ...spatialSampleParameterShapes(m.spatialSample, cv),
    ...projectorParameterShapes(m.projector, { Cq: spatialSampleOutDim(m.spatialSample, cv), Cv: cv, D: m.llm.hiddenSize }),
    ...qwen2ParameterShapes(m.llm),
    ...(m.lora ? loraParameterShapes(m.llm, m.lora) : []),
  ]);
}
