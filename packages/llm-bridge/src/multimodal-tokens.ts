import { MODAL_TOKENS } from './constants.js';
import type { Qwen2Tokenizer } from './tokenizer.js';

const placeholderPattern = new RegExp(`(${[...MODAL_TOKENS.keys()].join('|')})`);

/**
 * Tokenizes a prompt with `<video>`/`<image>` placeholders (`tokenizer_multimodal_token`, spec §1.2): the text is
 * split on the literal placeholders, each text chunk is tokenized on its own, and each placeholder becomes the
 * single id −201 (`<video>`) or −200 (`<image>`) for {@link spliceVisual} to replace.
 */
export function tokenizeMultimodal(tokenizer: Pick<Qwen2Tokenizer, 'encode'>, text: string): number[] {
  const ids: number[] = [];
  for (const chunk of text.split(placeholderPattern)) {
    if (chunk === '') continue;
    const index = MODAL_TOKENS.get(chunk);
    if (index !== undefined) ids.push(index);
    else ids.push(...tokenizer.encode(chunk));
  }
  return ids;
}
