/**
 * The `POST /v1/chat/completions` body: OpenAI's chat format with vLLM's `video_url` content part. The JSON schema
 * is checked by Fastify (Ajv, no type coercion, unknown content parts refused) before any handler code runs;
 * `toConversation` then applies the rules a schema cannot state (one medium per conversation, last turn a question).
 */
import type { ChatTurn } from '@bvllm/pipeline';
import { invalidRequest } from './api-error.js';
import { uploadedBytes } from './json-body.js';
import { mediaControlsSchema, type MediaControls } from './media-controls.js';

const mediaPart = (type: 'image_url' | 'video_url') => ({
  type: 'object',
  required: ['type', type],
  additionalProperties: false,
  properties: {
    type: { const: type },
    [type]: {
      type: 'object',
      required: ['url'],
      additionalProperties: false,
      // ajv counts a string's code points for minLength (0.4 s for a 55 MB data: URL); bodies over 1 MiB reach
      // it with each data: URL cut to its header (json-body.ts), so the count stays short.
      properties: { url: { type: 'string', minLength: 1 }, detail: { type: 'string' } },
    },
  },
});

const contentPart = {
  type: 'object',
  required: ['type'],
  discriminator: { propertyName: 'type' },
  oneOf: [
    { type: 'object', required: ['type', 'text'], additionalProperties: false, properties: { type: { const: 'text' }, text: { type: 'string' } } },
    mediaPart('image_url'),
    mediaPart('video_url'),
  ],
};

/** Ajv schema for the body. Unknown top-level fields are allowed, as OpenAI clients send optional extras (`user`, …). */
export function chatRequestSchema(maxTokens: number) {
  const tokens = { type: 'integer', minimum: 1, maximum: maxTokens };
  return {
    type: 'object',
    required: ['model', 'messages'],
    properties: {
      model: { type: 'string', minLength: 1 },
      messages: {
        type: 'array',
        minItems: 1,
        maxItems: 64,
        items: {
          type: 'object',
          required: ['role', 'content'],
          properties: {
            role: { enum: ['system', 'developer', 'user', 'assistant'] },
            // `items` applies only to arrays, so this is "a string or an array of parts" with precise error paths.
            content: { type: ['string', 'array'], maxItems: 32, items: contentPart },
            name: { type: 'string' },
          },
          additionalProperties: false,
        },
      },
      stream: { type: 'boolean' },
      stream_options: { type: ['object', 'null'], properties: { include_usage: { type: 'boolean' } } },
      max_tokens: { ...tokens, type: ['integer', 'null'] },
      max_completion_tokens: { ...tokens, type: ['integer', 'null'] },
      temperature: { type: ['number', 'null'], minimum: 0, maximum: 2 },
      top_p: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: 1 },
      seed: { type: ['integer', 'null'], minimum: 0, maximum: 4294967295 },
      stop: { anyOf: [{ type: 'null' }, { type: 'string', minLength: 1 }, { type: 'array', maxItems: 4, items: { type: 'string', minLength: 1 } }] },
      n: { type: ['integer', 'null'], minimum: 1, maximum: 1 },
      ...mediaControlsSchema,
      /** Server extension: also return a JPEG data URL of each selected frame (the web page's frame strip). */
      bvllm: { type: 'object', additionalProperties: false, properties: { thumbnails: { type: 'boolean' } } },
    },
  };
}

type ContentPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } } | { type: 'video_url'; video_url: { url: string } };

export interface ChatRequest extends MediaControls {
  model: string;
  messages: { role: 'system' | 'developer' | 'user' | 'assistant'; content: string | ContentPart[] }[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  bvllm?: { thumbnails?: boolean };
}

/** The conversation as the model takes it: user/assistant turns about one medium. */
export interface Conversation {
  turns: ChatTurn[];
  /** `bytes`: a data: URL's payload when the body parser decoded it already (the URL is then its header alone). */
  media: { url: string; param: string; bytes?: Buffer };
}

/**
 * System and developer messages are accepted and dropped: the model is trained with its own system prompt
 * (spec §1.2), and a different one would only move it off its training distribution.
 */
export function toConversation(request: ChatRequest, maxPromptChars: number): Conversation {
  // Counted over every message, system ones included, before anything is tokenized or opened: tokenizing blocks
  // the event loop about 2 µs per character.
  let chars = 0;
  for (const message of request.messages)
    for (const part of typeof message.content === 'string' ? [{ type: 'text' as const, text: message.content }] : message.content)
      if (part.type === 'text') chars += part.text.length;
  if (chars > maxPromptChars)
    throw invalidRequest(`messages: the text is ${chars} characters, over this server's limit of ${maxPromptChars} (--max-prompt-chars).`, 'prompt_too_long', 'messages');
  const turns: ChatTurn[] = [];
  let media: Conversation['media'] | undefined;
  request.messages.forEach((message, m) => {
    if (message.role === 'system' || message.role === 'developer') return;
    const parts: ContentPart[] = typeof message.content === 'string' ? [{ type: 'text', text: message.content }] : message.content;
    const texts: string[] = [];
    parts.forEach((part, p) => {
      if (part.type === 'text') return void texts.push(part.text);
      const param = `messages[${m}].content[${p}].${part.type}.url`;
      if (message.role !== 'user') throw invalidRequest(`${param}: media can only be sent in user messages.`, 'invalid_value', param);
      if (media) throw invalidRequest(`${param}: one image or video per conversation (the first is at ${media.param}).`, 'too_many_media', param);
      // Images and videos take the same path: the decoder tells them apart by content type (an image is one frame).
      const holder = part.type === 'image_url' ? part.image_url : part.video_url;
      media = { url: holder.url, param, bytes: uploadedBytes.get(holder) };
    });
    turns.push({ role: message.role, content: texts.join('\n') });
  });
  if (!media) throw invalidRequest('messages: the conversation needs one image_url or video_url content part.', 'media_required', 'messages');
  if (turns.at(-1)?.role !== 'user') throw invalidRequest('messages: the last message must be from the user.', 'invalid_value', 'messages');
  return { turns, media };
}
