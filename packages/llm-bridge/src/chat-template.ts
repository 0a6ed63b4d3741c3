/**
 * Chat prompts (spec §1.2): the tokenizer's own Jinja template, or Qwen2-Instruct's when it has none. The official
 * code passes no system message, so the template's default system turn appears (spec §10 D11), and the user turn
 * that carries the video is `<video>\n` + instruction.
 */
import { Template } from '@huggingface/jinja';
import { InvalidArgumentError } from '@bvllm/core';
import type { Qwen2Tokenizer } from './tokenizer.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Qwen2-7B-Instruct's `chat_template`: a default system turn unless the first message is one. */
export const QWEN2_DEFAULT_CHAT_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}" +
  "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}" +
  "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export class ChatTemplate {
  private readonly template: Template;

  constructor(readonly source: string = QWEN2_DEFAULT_CHAT_TEMPLATE) {
    this.template = new Template(source);
  }

  /** The tokenizer's template, or Qwen2-Instruct's default when `tokenizer_config.json` has none. */
  static forTokenizer(tokenizer: Pick<Qwen2Tokenizer, 'chatTemplate'>): ChatTemplate {
    return new ChatTemplate(tokenizer.chatTemplate ?? QWEN2_DEFAULT_CHAT_TEMPLATE);
  }

  /** Renders a conversation; `addGenerationPrompt` appends the assistant header the model continues from. */
  render(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean } = {}): string {
    if (messages.length === 0) throw new InvalidArgumentError('messages', 'a conversation needs at least one message');
    return this.template.render({ messages, add_generation_prompt: options.addGenerationPrompt ?? false });
  }
}

/** The user content that carries a visual input: the placeholder first, then a newline (`__init__.py:71-74`). */
export function multimodalUserContent(instruction: string, modal: 'video' | 'image' = 'video'): string {
  return `<${modal}>\n${instruction}`;
}
