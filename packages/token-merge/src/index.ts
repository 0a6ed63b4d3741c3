export {
  bipartiteMerge,
  multiLayerMerge,
  multiLayerMergeSchedule,
  planBipartiteMerge,
  type BipartitePlan,
  type TokenTensor,
} from './bipartite-merge.js';
