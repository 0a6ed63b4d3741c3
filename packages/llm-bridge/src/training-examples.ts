/**
 * Token ids and labels of one training sample (spec §2, label masking). Placeholders stay single ids here;
 * {@link spliceVisual} expands them (labels −100) once the visual embeddings exist.
 */
import { InvalidArgumentError } from '@bvllm/core';
import type { ChatMessage, ChatTemplate } from './chat-template.js';
import { IGNORE_INDEX } from './constants.js';
import { tokenizeMultimodal } from './multimodal-tokens.js';
import type { Qwen2Tokenizer } from './tokenizer.js';

export interface TrainingExample {
  /** Prompt and answer ids, placeholders as −200/−201. */
  inputIds: number[];
  /** Same length; {@link IGNORE_INDEX} where the loss is not taken. */
  labels: number[];
}

/**
 * Instruction tuning (`train.py:174-227`): everything up to and including each `<|im_start|>assistant\n` is
 * masked; each assistant answer plus its `<|im_end|>\n` is supervised. Works with any template that renders a
 * conversation's prefix as a prefix of the whole (the Qwen2 default does).
 */
export function chatExample(tokenizer: Pick<Qwen2Tokenizer, 'encode'>, template: ChatTemplate, messages: readonly ChatMessage[]): TrainingExample {
  const inputIds: number[] = [];
  const labels: number[] = [];
  let rendered = '';
  const add = (text: string, supervised: boolean) => {
    // Loops, not push(...ids): a spread passes every id as an argument and overflows the stack on long texts.
    for (const id of tokenizeMultimodal(tokenizer, text)) {
      inputIds.push(id);
      labels.push(supervised && id >= 0 ? id : IGNORE_INDEX);
    }
  };
  const extend = (next: string, supervised: boolean) => {
    if (!next.startsWith(rendered))
      throw new InvalidArgumentError('template', 'renders an earlier part of the conversation differently once later turns are added');
    add(next.slice(rendered.length), supervised);
    rendered = next;
  };
  messages.forEach((message, i) => {
    if (message.role !== 'assistant') return;
    extend(template.render(messages.slice(0, i), { addGenerationPrompt: true }), false);
    extend(template.render(messages.slice(0, i + 1)), true);
  });
  if (inputIds.length === 0) throw new InvalidArgumentError('messages', 'a training conversation needs an assistant turn');
  return { inputIds, labels };
}

/**
 * Alignment pretraining (`preprocess_plain`, `train.py:145-171`): human text + " " + answer, no template and no
 * EOS; every text token is supervised, the instruction included, and only the placeholder is masked.
 */
export function plainExample(tokenizer: Pick<Qwen2Tokenizer, 'encode'>, human: string, answer: string): TrainingExample {
  const inputIds = tokenizeMultimodal(tokenizer, `${human} ${answer}`);
  return { inputIds, labels: inputIds.map((id) => (id >= 0 ? id : IGNORE_INDEX)) };
}
