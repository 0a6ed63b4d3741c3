export { planConversion, type ConversionPlan, type ConversionSources, type PlannedWeight, type RandomReason, type SkippedKey } from './plan.js';
export { convertModel, type ConvertOptions, type ConvertDtype, type ConvertQuantize, type ConversionReport } from './convert-model.js';
export { ConversionError, type SourceName, type MissingWeight, type UnexpectedWeight, type MisshapedWeight, type WrongDtypeWeight } from './conversion-error.js';
export { modelParameterShapes, moduleConfigs, VISION_PREFIX, type ModuleConfigs } from './model-shapes.js';
