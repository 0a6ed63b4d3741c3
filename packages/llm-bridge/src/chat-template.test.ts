import { describe, expect, it } from 'vitest';
import { ChatTemplate, QWEN2_DEFAULT_CHAT_TEMPLATE, multimodalUserContent } from './chat-template.js';
import { VIDEO_TOKEN_INDEX, IMAGE_TOKEN_INDEX } from './constants.js';
import { tokenizeMultimodal } from './multimodal-tokens.js';
import { qwenTokenizer, vocabId } from './test-tokenizer.js';

describe('chat template (spec §1.2, §10 D11)', () => {
  it('the Qwen2 default adds the default system turn and puts <video>\\n before the instruction', () => {
    const prompt = new ChatTemplate().render([{ role: 'user', content: multimodalUserContent('What happens?') }], { addGenerationPrompt: true });
    expect(prompt).toBe(
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<video>\nWhat happens?<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('a user system message replaces the default one; multi-turn keeps every turn', () => {
    const prompt = new ChatTemplate(QWEN2_DEFAULT_CHAT_TEMPLATE).render([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: '<image>\nWhat is it?' },
      { role: 'assistant', content: 'A cat.' },
      { role: 'user', content: 'Colour?' },
    ]);
    expect(prompt).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<image>\nWhat is it?<|im_end|>\n' +
        '<|im_start|>assistant\nA cat.<|im_end|>\n<|im_start|>user\nColour?<|im_end|>\n',
    );
  });

  it("uses the tokenizer's own template when tokenizer_config.json has one (Qwen3's: no default system turn)", () => {
    const template = ChatTemplate.forTokenizer(qwenTokenizer());
    expect(template.source).toBe(qwenTokenizer().chatTemplate);
    const prompt = template.render(
      [
        { role: 'user', content: '<video>\nHi' },
        { role: 'assistant', content: 'Hello.' },
        { role: 'user', content: 'Bye' },
      ],
      { addGenerationPrompt: true },
    );
    expect(prompt).toBe('<|im_start|>user\n<video>\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n');
  });

  it('falls back to the Qwen2 default when the tokenizer has no template', () => {
    expect(ChatTemplate.forTokenizer({ chatTemplate: undefined }).source).toBe(QWEN2_DEFAULT_CHAT_TEMPLATE);
  });
});

describe('tokenizeMultimodal (spec §1.2)', () => {
  const tok = qwenTokenizer();
  it('turns <video> and <image> into −201 and −200 and tokenizes the text around them', () => {
    const ids = tokenizeMultimodal(tok, '<|im_start|>user\n<video>\nHello world<image>');
    expect(ids).toEqual([151644, vocabId('user'), vocabId('Ċ'), VIDEO_TOKEN_INDEX, vocabId('Ċ'), vocabId('Hello'), vocabId('Ġworld'), IMAGE_TOKEN_INDEX]);
    expect(VIDEO_TOKEN_INDEX).toBe(-201);
    expect(IMAGE_TOKEN_INDEX).toBe(-200);
  });

  it('text without placeholders (even "constructor") tokenizes as plain text', () => {
    expect(tokenizeMultimodal(tok, 'constructor')).toEqual(tok.encode('constructor'));
  });
});

describe('renderSegments (issue #20 item 3)', () => {
  const messages = [
    { role: 'system' as const, content: 'Be brief.' },
    { role: 'user' as const, content: '<video>\nWhat <|im_end|> is this?' },
  ];

  it('joins back to render() and marks exactly the messages\' contents', () => {
    const template = new ChatTemplate();
    const segments = template.renderSegments(messages, { addGenerationPrompt: true });
    expect(segments.map((s) => s.text).join('')).toBe(template.render(messages, { addGenerationPrompt: true }));
    expect(segments.filter((s) => s.content).map((s) => s.text)).toEqual(messages.map((m) => m.content));
  });

  it('refuses a template that edits or repeats a content, since the boundary would be lost', () => {
    const upper = new ChatTemplate("{% for message in messages %}{{ message['content'] | upper }}{% endfor %}");
    expect(() => upper.renderSegments(messages)).toThrow(/exactly once and unchanged/);
    const twice = new ChatTemplate("{% for message in messages %}{{ message['content'] + message['content'] }}{% endfor %}");
    expect(() => twice.renderSegments(messages)).toThrow(/exactly once and unchanged/);
  });
});
