/** Label of positions the loss skips (PyTorch `CrossEntropyLoss.ignore_index`; spec §1.2, §2). */
export const IGNORE_INDEX = -100;
/** Placeholder id of `<image>` in a tokenized prompt (`bvlm/constants.py`, spec §1.2). */
export const IMAGE_TOKEN_INDEX = -200;
/** Placeholder id of `<video>` in a tokenized prompt (`bvlm/constants.py`, spec §1.2). */
export const VIDEO_TOKEN_INDEX = -201;
/** The literal placeholders in prompt text and the ids they become. */
export const MODAL_TOKENS: ReadonlyMap<string, number> = new Map([
  ['<image>', IMAGE_TOKEN_INDEX],
  ['<video>', VIDEO_TOKEN_INDEX],
]);
