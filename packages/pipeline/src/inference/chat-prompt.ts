/**
 * The chat prompt around a video (spec §1.2): `<video>\n` opens the first user turn, the chat template renders the
 * conversation, and the visual embeddings replace the placeholder id. The splice here works on plain arrays with
 * the decoder's own embedding lookup, so no tfjs copy of the LLM is needed (the training path splices in tfjs,
 * `spliceVisual`, with the same result).
 */
import { InvalidArgumentError } from '@bvllm/core';
import type { CausalDecoder, ChatMessage } from '@bvllm/llm-bridge';

/** A turn of a conversation about one video. */
export interface ChatTurn {
  role: 'user' | 'assistant';
  content: string;
}

/** The chat messages of a conversation about a video: `<video>\n` opens the first user turn (spec §1.2). */
export function chatMessages(systemPrompt: string | undefined, turns: readonly ChatTurn[]): ChatMessage[] {
  const messages: ChatMessage[] = systemPrompt !== undefined ? [{ role: 'system', content: systemPrompt }] : [];
  let tagged = false;
  for (const turn of turns) {
    if (turn.role === 'user' && !tagged) {
      messages.push({ role: 'user', content: `<video>\n${turn.content}` });
      tagged = true;
    } else messages.push({ role: turn.role, content: turn.content });
  }
  return messages;
}

/**
 * Prompt ids with one placeholder (id < 0) → embeddings `[1, L, D]` row-major, the placeholder replaced by
 * `visualEmbeds [M, D]`. Text runs are embedded by the decoder (one call per run).
 */
export async function spliceEmbeddings(decoder: CausalDecoder, ids: readonly number[], visualEmbeds: Float32Array): Promise<{ inputsEmbeds: Float32Array; length: number }> {
  const d = decoder.hiddenSize;
  const placeholders = ids.filter((id) => id < 0).length;
  if (placeholders !== 1) throw new InvalidArgumentError('prompt', `expected one <video> placeholder in the prompt, found ${placeholders}`);
  if (visualEmbeds.length % d !== 0) throw new InvalidArgumentError('visualEmbeds', `${visualEmbeds.length} values are not whole rows of D = ${d}`);
  const at = ids.findIndex((id) => id < 0);
  const before = ids.slice(0, at);
  const after = ids.slice(at + 1);
  const length = before.length + visualEmbeds.length / d + after.length;
  const out = new Float32Array(length * d);
  if (before.length) out.set(await decoder.embed([before]), 0);
  out.set(visualEmbeds, before.length * d);
  if (after.length) out.set(await decoder.embed([after]), before.length * d + visualEmbeds.length);
  return { inputsEmbeds: out, length };
}
