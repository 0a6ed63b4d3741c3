/**
 * The answer side of a chat completion, shared by files and live streams (`chat-completion.ts`,
 * `stream-chat.ts`): the generation settings a request asks for, the text relayed as server-sent events or
 * gathered for one JSON body, usage and metrics, and errors after the first byte as an `error` event.
 */
import { randomUUID } from 'node:crypto';
import { BvllmError } from '@bvllm/core';
import type { InferenceSession } from '@bvllm/pipeline';
import type { FastifyReply } from 'fastify';
import { ApiError, toApiError } from './api-error.js';
import type { ChatRequest } from './chat-request.js';
import type { Metrics } from './metrics.js';
import type { ServerConfig } from './server-config.js';

/** OpenAI has no 'eos' or 'context': both end the turn, and running out of context is a length stop. */
const finishReason = (reason: string) => (reason === 'length' || reason === 'context' ? 'length' : 'stop');

/** Refuses a request for another model (404, as OpenAI answers). */
export function checkModelName(body: ChatRequest, name: string): void {
  if (body.model !== name) throw new ApiError(404, 'not_found_error', `The model "${body.model}" does not exist; this server serves "${name}".`, 'model_not_found', 'model');
}

/** The request's generation settings over the server's defaults. */
export function generationOf(body: ChatRequest, config: ServerConfig) {
  const stop = body.stop == null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
  return {
    maxNewTokens: body.max_completion_tokens ?? body.max_tokens ?? config.maxTokens,
    stopStrings: stop,
    // OpenAI's temperature 0 is greedy decoding; any other value samples. Absent, the model's default applies
    // (greedy, as the reference evaluates, spec §3).
    ...(body.temperature != null && (body.temperature === 0 ? { doSample: false } : { doSample: true, temperature: body.temperature })),
    ...(body.top_p != null && { topP: body.top_p }),
  };
}

/** Server-sent events on the raw response; opened lazily at the first chunk. */
class EventStream {
  private opened = false;
  constructor(private readonly reply: FastifyReply) {}

  get started(): boolean {
    return this.opened;
  }

  send(payload: unknown): void {
    if (!this.opened) {
      this.reply.hijack();
      this.reply.raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      this.opened = true;
    }
    if (!this.reply.raw.destroyed) this.reply.raw.write(`data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`);
  }

  end(): void {
    if (!this.reply.raw.destroyed) this.reply.raw.end();
  }
}

/** One response: as one JSON body, or (with `stream: true`) as chunks sent while the answer is generated. */
export class CompletionResponse {
  private readonly base: { id: string; created: number; model: string; system_fingerprint: null };
  private readonly events?: EventStream;

  constructor(
    private readonly reply: FastifyReply,
    private readonly body: ChatRequest,
    private readonly session: InferenceSession,
    private readonly metrics: Metrics,
    private readonly receivedAt: number,
  ) {
    this.base = { id: `chatcmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: session.config.name, system_fingerprint: null };
    if (body.stream) this.events = new EventStream(reply);
  }

  /** Relays `answer`'s text deltas (a role chunk first, with the time to first token); returns the text and its result. */
  async relay<R>(answer: AsyncGenerator<string, R>): Promise<{ text: string; result: R }> {
    let text = '';
    for (let first = true; ; first = false) {
      const next = await answer.next();
      if (first) {
        this.metrics.timeToFirstToken.observe((performance.now() - this.receivedAt) / 1000);
        this.chunk({ role: 'assistant', content: '' });
      }
      if (next.done) return { text, result: next.value };
      text += next.value;
      this.chunk({ content: next.value });
    }
  }

  /**
   * Ends the response: metrics, usage, the finish reason, and the `bvllm` extension. The answer is re-tokenized
   * for usage (the pipeline streams text, not ids); a broken UTF-8 sequence re-encodes to more ids than were
   * generated, hence the cap at `maxNewTokens`.
   */
  async finish(answer: { text: string; finishReason: string; promptTokens: number; maxNewTokens: number }, bvllm: unknown): Promise<void> {
    this.metrics.generation.observe((performance.now() - this.receivedAt) / 1000);
    const completionTokens = Math.min(this.session.assets.tokenizer.encode(answer.text).length, answer.maxNewTokens);
    const usage = { prompt_tokens: answer.promptTokens, completion_tokens: completionTokens, total_tokens: answer.promptTokens + completionTokens };
    const finish = finishReason(answer.finishReason);
    this.metrics.completions.add(1, { finish_reason: finish });
    this.metrics.promptTokens.add(usage.prompt_tokens);
    this.metrics.completionTokens.add(usage.completion_tokens);
    if (!this.events) {
      const message = { role: 'assistant', content: answer.text, refusal: null };
      await this.reply.send({ ...this.base, object: 'chat.completion', choices: [{ index: 0, message, logprobs: null, finish_reason: finish }], usage, bvllm });
      return;
    }
    this.events.send({ ...this.base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: finish }], bvllm });
    if (this.body.stream_options?.include_usage) this.events.send({ ...this.base, object: 'chat.completion.chunk', choices: [], usage });
    this.events.send('[DONE]');
    this.events.end();
  }

  /**
   * A failure: rethrown (shown as its server-side reason when the server aborted, a timeout or shutdown) while no
   * byte is out, else sent as an `error` event (mid-stream the status is already 200; OpenAI's clients raise an
   * APIError for it).
   */
  fail(error: unknown, signal: AbortSignal): void {
    if (BvllmError.isInstance(error) && error.code === 'ABORTED') this.metrics.aborted.add(1);
    const shown = signal.aborted && signal.reason instanceof ApiError ? signal.reason : error;
    if (!this.events?.started) throw shown;
    this.events.send(toApiError(shown).body());
    this.events.end();
  }

  private chunk(delta: Record<string, string>): void {
    this.events?.send({ ...this.base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, logprobs: null, finish_reason: null }] });
  }
}
