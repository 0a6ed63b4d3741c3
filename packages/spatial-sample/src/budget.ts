/**
 * The per-frame token target of the budget merge (spec §1.1 (d), D12, `bvlm_arch.py:416, 464-468`):
 * `max_T = θ // R`, `N' = int(max(1, max_T / K' · R))` in double precision, as the code computes it.
 * The code writes its constant 32 where we write R; they agree for the released model (R = 32).
 */
export function budgetTokensPerFrame(tokenBudget: number, numQueries: number, numFrames: number): number {
  const maxFrames = Math.floor(tokenBudget / numQueries);
  return Math.trunc(Math.max(1, (maxFrames / numFrames) * numQueries));
}

/** N' of K' frames under θ (`null`: no budget merge, R per frame), never above R. */
export function tokensPerFrameUnder(tokenBudget: number | null, numQueries: number, numFrames: number): number {
  return tokenBudget === null ? numQueries : Math.min(numQueries, budgetTokensPerFrame(tokenBudget, numQueries, numFrames));
}
