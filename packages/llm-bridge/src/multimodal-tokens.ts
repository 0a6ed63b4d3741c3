import type { ChatMessage, ChatTemplate } from './chat-template.js';
import { MODAL_TOKENS } from './constants.js';
import type { Qwen2Tokenizer } from './tokenizer.js';

const placeholderPattern = new RegExp(`(${[...MODAL_TOKENS.keys()].join('|')})`);

/** Appends without spreading: `push(...ids)` passes every id as an argument and overflows the stack past ~120 k. */
function append(ids: number[], more: readonly number[]): void {
  for (const id of more) ids.push(id);
}

/**
 * Tokenizes a prompt with `<video>`/`<image>` placeholders (`tokenizer_multimodal_token`, spec §1.2): the text is
 * split on the literal placeholders, each text chunk is tokenized on its own, and each placeholder becomes the
 * single id −201 (`<video>`) or −200 (`<image>`) for {@link spliceVisual} to replace. `encode` decides whether
 * special tokens in the text are parsed.
 */
export function tokenizeMultimodal(tokenizer: Pick<Qwen2Tokenizer, 'encode'>, text: string, encode: (text: string) => number[] = (t) => tokenizer.encode(t)): number[] {
  const ids: number[] = [];
  for (const chunk of text.split(placeholderPattern)) {
    if (chunk === '') continue;
    const index = MODAL_TOKENS.get(chunk);
    if (index !== undefined) ids.push(index);
    else append(ids, encode(chunk));
  }
  return ids;
}

/**
 * A chat prompt → ids where only the template inserts special tokens: the template's own text is tokenized with
 * special tokens parsed, each message's content with parsing off, so `<|im_start|>system` typed by a user stays
 * text (issue #20 item 3). Placeholders in content still become their ids.
 */
export function tokenizeChat(
  tokenizer: Pick<Qwen2Tokenizer, 'encode' | 'encodeText'>,
  template: ChatTemplate,
  messages: readonly ChatMessage[],
  options: { addGenerationPrompt?: boolean } = {},
): number[] {
  const ids: number[] = [];
  for (const segment of template.renderSegments(messages, options))
    append(ids, segment.content ? tokenizeMultimodal(tokenizer, segment.text, (t) => tokenizer.encodeText(t)) : tokenizer.encode(segment.text));
  return ids;
}
