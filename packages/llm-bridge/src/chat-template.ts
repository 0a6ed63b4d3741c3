/**
 * Chat prompts (spec §1.2): the tokenizer's own Jinja template, or Qwen2-Instruct's when it has none. The official
 * code passes no system message, so the template's default system turn appears (spec §10 D11), and the user turn
 * that carries the video is `<video>\n` + instruction.
 */
import { randomUUID } from 'node:crypto';
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

/** A piece of a rendered prompt: written by the template (special tokens allowed) or a message's own content. */
export interface PromptSegment {
  text: string;
  /** True for a message's content: it is tokenized with special-token parsing off. */
  content: boolean;
}

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

  /**
   * Renders a conversation as segments that keep the template's text apart from the messages' content, so the
   * content can be tokenized as plain text (issue #20 item 3). Each content is rendered as a marker holding a
   * per-call nonce, which no message can contain or forge, then put back; the joined texts equal {@link render}'s.
   */
  renderSegments(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean } = {}): PromptSegment[] {
    const nonce = randomUUID();
    const marked = messages.map((m, i) => ({ ...m, content: `\u0000${nonce}:${i}\u0000` }));
    const pieces = this.render(marked, options).split(new RegExp(`\u0000${nonce}:(\\d+)\u0000`));
    const seen = new Set<number>();
    const segments: PromptSegment[] = [];
    pieces.forEach((piece, i) => {
      if (i % 2 === 0) return void (piece && segments.push({ text: piece, content: false }));
      const index = Number(piece);
      seen.add(index);
      segments.push({ text: messages[index].content, content: true });
    });
    // A template that drops, repeats or edits (trims, escapes) a content would misplace the boundary.
    if (seen.size !== messages.length || pieces.length !== 2 * messages.length + 1)
      throw new InvalidArgumentError('template', 'must write each message\'s content exactly once and unchanged to keep user text apart from special tokens');
    return segments;
  }
}

/** The user content that carries a visual input: the placeholder first, then a newline (`__init__.py:71-74`). */
export function multimodalUserContent(instruction: string, modal: 'video' | 'image' = 'video'): string {
  return `<${modal}>\n${instruction}`;
}
