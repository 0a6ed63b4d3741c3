export {
  bipartiteMerge,
  multiLayerMerge,
  multiLayerMergeSchedule,
  planBipartiteMerge,
  type BipartitePlan,
  type TokenTensor,
} from './bipartite-merge.js';
export {
  frameOrder,
  noMergeConfig,
  rowCosineMergeConfig,
  tokenMergeConfig,
  type FrameOrder,
  type NoMergeConfig,
  type RowCosineMergeConfig,
  type TokenMergeConfig,
} from './config.js';
export { planRowCosineMerge, rowCosineMerge, type RowCosinePlan } from './row-cosine-merge.js';
export { tokenMergeRegistry, type TokenMergeStage } from './token-merge-stage.js';
