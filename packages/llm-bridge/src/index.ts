export { qwen2Config, parseQwen2Config, qwen2ConfigFromHf, headDimOf, type Qwen2Config, type Qwen2ConfigInput } from './qwen2-config.js';
export { qwen2KeyRules } from './qwen2-keys.js';
export {
  Qwen2Model,
  Qwen2Block,
  disposeKvCache,
  QWEN2_PROJECTIONS,
  type KvCache,
  type Qwen2ForwardInput,
  type Qwen2ForwardOutput,
  type Qwen2ProjectionName,
} from './qwen2-model.js';
