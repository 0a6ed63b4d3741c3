/**
 * OpenAI parameters this server cannot honour get a 400 that names them, as vLLM answers, instead of being
 * silently ignored (issue #20 item 5). A parameter at its neutral value (`logprobs: false`, `frequency_penalty: 0`,
 * `tools: []`, `response_format: {"type": "text"}`, null) changes nothing and passes, since clients send those by default.
 */
import { invalidRequest } from './api-error.js';

const isEmpty = (v: unknown) => v == null || v === false || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && Object.keys(v as object).length === 0);

/** Each parameter and its neutral values (the ones that ask for nothing this server lacks). */
const NEUTRAL: Record<string, (value: unknown) => boolean> = {
  logprobs: (v) => v == null || v === false,
  top_logprobs: (v) => v == null || v === 0,
  tools: isEmpty,
  tool_choice: (v) => v == null || v === 'none',
  functions: isEmpty,
  function_call: (v) => v == null || v === 'none',
  parallel_tool_calls: (v) => v == null || typeof v === 'boolean',
  response_format: (v) => v == null || (typeof v === 'object' && (v as { type?: unknown }).type === 'text'),
  frequency_penalty: (v) => v == null || v === 0,
  presence_penalty: (v) => v == null || v === 0,
  logit_bias: isEmpty,
  audio: (v) => v == null,
  modalities: (v) => v == null || (Array.isArray(v) && v.every((m) => m === 'text')),
  prediction: (v) => v == null,
  best_of: (v) => v == null || v === 1,
  echo: (v) => v == null || v === false,
  suffix: (v) => v == null,
};

/** Throws 400 `unsupported_parameter` naming the first parameter set to something this server cannot do. */
export function rejectUnsupported(body: Record<string, unknown>): void {
  for (const [name, neutral] of Object.entries(NEUTRAL))
    if (name in body && !neutral(body[name])) throw invalidRequest(`Unsupported parameter: '${name}' is not supported by this server.`, 'unsupported_parameter', name);
}

export const UNSUPPORTED_PARAMETERS = Object.keys(NEUTRAL);
