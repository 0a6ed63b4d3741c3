/**
 * Conversation → token ids and labels, as the official `train.py` builds them (spec §2, `train.py:145-253`):
 * the modal tag moved to the front of its turn, then either the chat format (stage 2, only assistant replies
 * supervised) or the plain format (stage 1, all text supervised). Written against a structural tokenizer and chat
 * renderer, which `@bvllm/llm-bridge`'s Qwen2 tokenizer and `ChatTemplate` satisfy.
 */
import { DatasetError } from './dataset-error.js';

/** Label of positions the loss skips (PyTorch `ignore_index`). */
export const IGNORE_INDEX = -100;
/** Placeholder ids a tokenized prompt holds where the visual tokens go (`bvlm/constants.py`, spec §1.2). */
export const IMAGE_TOKEN_INDEX = -200;
export const VIDEO_TOKEN_INDEX = -201;

export type Modality = 'video' | 'image' | 'text';
export type ModalToken = '<video>' | '<image>';
export const MODAL_TOKEN_OF: Readonly<Record<Exclude<Modality, 'text'>, ModalToken>> = { video: '<video>', image: '<image>' };
const PLACEHOLDER_ID: Readonly<Record<ModalToken, number>> = { '<video>': VIDEO_TOKEN_INDEX, '<image>': IMAGE_TOKEN_INDEX };

/** Text → ids, no special tokens added (HF `add_special_tokens=False`). */
export interface TextTokenizer {
  encode(text: string): number[];
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Renders messages with the LLM's chat template; `addGenerationPrompt` appends the assistant header. */
export interface ChatRenderer {
  render(messages: readonly ChatMessage[], options?: { addGenerationPrompt?: boolean }): string;
}

/** One turn of a VideoLLaMA2/LLaVA conversation. */
export interface Turn {
  from: 'human' | 'gpt';
  value: string;
}

export interface TokenizedSample {
  /** Text token ids with one placeholder id (−201 / −200) where the visual tokens go. Length Lt. */
  inputIds: number[];
  /** Same length; −100 where the loss is skipped. */
  labels: number[];
}

/**
 * `tokenizer_multimodal_token`: the text split on the literal modal tag, each piece tokenized on its own, the tag
 * itself one placeholder id. Without a tag (text-only samples) the text is tokenized whole.
 */
export function tokenizeWithPlaceholder(tokenizer: TextTokenizer, text: string, modalToken?: ModalToken): number[] {
  if (!modalToken) return tokenizer.encode(text);
  const ids: number[] = [];
  text.split(modalToken).forEach((chunk, i) => {
    if (i > 0) ids.push(PLACEHOLDER_ID[modalToken]);
    if (chunk !== '') ids.push(...tokenizer.encode(chunk));
  });
  return ids;
}

/**
 * `preprocess_multimodal`: in the turn holding the tag, the tag is removed and put back as `tag + "\n"` at the start
 * (`train.py:241-247`). Returns the new turns and the question that conditions the Q-Formers: that turn's text
 * without the tag (spec §1.2). One video or image per sample, so exactly one turn may hold the tag.
 */
export function moveModalTokenToFront(sampleId: string, turns: readonly Turn[], modalToken: ModalToken): { turns: Turn[]; question: string } {
  const holders = turns.flatMap((t, i) => (t.value.includes(modalToken) ? [i] : []));
  if (holders.length !== 1)
    throw new DatasetError(sampleId, `expected ${modalToken} in exactly one turn, found it in ${holders.length}`);
  const question = turns[holders[0]].value.replaceAll(modalToken, '').trim();
  return {
    turns: turns.map((t, i) => (i === holders[0] ? { from: t.from, value: `${modalToken}\n${question}`.trim() } : { ...t })),
    question,
  };
}

const ROLE: Readonly<Record<Turn['from'], 'user' | 'assistant'>> = { human: 'user', gpt: 'assistant' };

/**
 * Stage 2 (`preprocess`, `train.py:174-227`): the whole conversation through the chat template; for each
 * (human, gpt) pair, positions from the end of the previous pair up to the end of the rendered prompt with the
 * assistant header (`<|im_start|>assistant\n`) are −100, so each reply and its `<|im_end|>\n` are supervised.
 * Lengths come from tokenizing each prefix on its own, exactly as the official code measures them.
 */
export function preprocessChat(
  sampleId: string,
  turns: readonly Turn[],
  tokenizer: TextTokenizer,
  chat: ChatRenderer,
  modalToken?: ModalToken,
): TokenizedSample {
  // The official code drops a leading gpt turn.
  const source = turns.length > 0 && turns[0].from !== 'human' ? turns.slice(1) : turns.slice();
  if (source.length === 0 || source.length % 2 !== 0)
    throw new DatasetError(sampleId, `a conversation needs (human, gpt) pairs, got ${source.length} turn(s)`);
  for (let i = 0; i < source.length; i++)
    if (source[i].from !== (i % 2 === 0 ? 'human' : 'gpt'))
      throw new DatasetError(sampleId, `turn ${i} is from ${source[i].from}, expected ${i % 2 === 0 ? 'human' : 'gpt'}`);
  const messages: ChatMessage[] = source.map((t) => ({ role: ROLE[t.from], content: t.value }));
  const length = (text: string) => tokenizeWithPlaceholder(tokenizer, text, modalToken).length;
  const inputIds = tokenizeWithPlaceholder(tokenizer, chat.render(messages, { addGenerationPrompt: false }), modalToken);
  const labels = inputIds.slice();
  let cursor = 0;
  for (let pair = 0; pair < messages.length; pair += 2) {
    const instructionLength = length(chat.render(messages.slice(0, pair + 1), { addGenerationPrompt: true }));
    for (let i = cursor; i < Math.min(instructionLength, labels.length); i++) labels[i] = IGNORE_INDEX;
    cursor = length(chat.render(messages.slice(0, pair + 2), { addGenerationPrompt: false }));
  }
  return { inputIds, labels };
}

/**
 * Stage 1 (`preprocess_plain`, `train.py:145-171`): `human value + " " + gpt value`, no template, no EOS; every text
 * token is supervised, only the placeholder is −100 (spec §2). Exactly one (human, gpt) pair with the tag.
 */
export function preprocessPlain(sampleId: string, turns: readonly Turn[], tokenizer: TextTokenizer, modalToken: ModalToken | undefined): TokenizedSample {
  if (!modalToken) throw new DatasetError(sampleId, 'the plain (stage-1) format needs a video or image sample');
  if (turns.length !== 2) throw new DatasetError(sampleId, `the plain (stage-1) format needs 2 turns, got ${turns.length}`);
  if (!turns[0].value.includes(modalToken)) throw new DatasetError(sampleId, `the first turn does not hold ${modalToken}`);
  const inputIds = tokenizeWithPlaceholder(tokenizer, turns.map((t) => t.value).join(' '), modalToken);
  const labels = inputIds.map((id) => (id === PLACEHOLDER_ID[modalToken] ? IGNORE_INDEX : id));
  return { inputIds, labels };
}
