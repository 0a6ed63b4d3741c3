/**
 * Errors in the OpenAI shape, `{"error": {"message", "type", "param", "code"}}`, with the status the OpenAI API
 * uses for the same failure, so the official clients raise their matching exception classes
 * (BadRequestError, PermissionDeniedError, RateLimitError, …). Model errors are mapped by their stable `code`.
 */
import { BvllmError } from '@bvllm/core';

export type ApiErrorType = 'invalid_request_error' | 'permission_error' | 'not_found_error' | 'rate_limit_error' | 'timeout_error' | 'server_error';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: ApiErrorType,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  body(): { error: { message: string; type: ApiErrorType; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const invalidRequest = (message: string, code: string, param: string | null = null) => new ApiError(400, 'invalid_request_error', message, code, param);

/** Fastify's own errors (body parsing, size, content type, schema validation) carry a status and a code. */
interface FrameworkError {
  statusCode?: number;
  code?: string;
  message?: string;
  validation?: { instancePath?: string; message?: string; params?: Record<string, unknown> }[];
  validationContext?: string;
}

/** `/messages/0/content/1/type` → `messages[0].content[1].type`, the way OpenAI names a bad parameter. */
function paramPath(instancePath: string): string {
  return instancePath
    .split('/')
    .filter(Boolean)
    .map((part, i) => (/^\d+$/.test(part) ? `[${part}]` : i === 0 ? part : `.${part}`))
    .join('');
}

function fromValidation(error: FrameworkError): ApiError {
  const first = error.validation![0];
  const where = paramPath(first.instancePath ?? '');
  const field = (first.params?.missingProperty ?? first.params?.additionalProperty) as string | undefined;
  const param = field ? (where ? `${where}.${field}` : field) : where || null;
  const message = first.params?.additionalProperty ? `${param} is not a known field` : `${where || 'body'} ${first.message ?? 'is invalid'}`;
  return invalidRequest(`Invalid request: ${message}.`, 'invalid_value', param);
}

/** `reason` of VideoDecodeError / UnsupportedMediaError: the cause without the file name (read by shape, so a second package copy works). */
const reasonOf = (error: BvllmError) => {
  const reason = (error as { reason?: unknown }).reason;
  return typeof reason === 'string' ? reason : 'unreadable media';
};

/** Any thrown value → the ApiError the client sees. Unknown errors become a 500 without internals. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (BvllmError.isInstance(error)) {
    switch (error.code) {
      // The message names the server's file (a temp path for uploads) and quotes ffmpeg's stderr, which would
      // tell a client which files exist; the client gets the reason alone. A decoder that could not be started
      // (the error has a cause) is the server's fault.
      case 'VIDEO_DECODE': {
        // ResolutionLimitError (read by shape): refused from the header, before any decoding.
        const pixels = error as { limit?: unknown; width?: number; height?: number; maxPixels?: number };
        if (pixels.limit === 'pixels')
          return invalidRequest(`The media's frames are ${pixels.width}x${pixels.height}, over this server's limit of ${pixels.maxPixels} pixels (--max-pixels).`, 'media_resolution_too_large');
        if (error.cause !== undefined) return new ApiError(500, 'server_error', 'The media decoder could not be started.', 'internal_error');
        return invalidRequest(`The media cannot be decoded: ${reasonOf(error)}.`, 'invalid_media');
      }
      case 'MEDIA_UNSUPPORTED':
        return invalidRequest(`The media is ${reasonOf(error)}.`, 'unsupported_media_type');
      case 'PROMPT_TOO_LONG':
        return invalidRequest(error.message, 'context_length_exceeded', 'messages');
      // Only a client disconnect gets here (server-side aborts carry their own ApiError), so nobody reads this
      // body; nginx's 499 keeps it out of the 5xx counts.
      case 'ABORTED':
        return new ApiError(499, 'invalid_request_error', 'The client closed the request.', 'client_closed_request');
      // Live streams (issue #22): the reason alone, the message may quote ffmpeg.
      case 'STREAM_OPEN':
      case 'STREAM_NO_VIDEO':
        return invalidRequest(`The stream is unavailable: ${reasonOf(error)}.`, 'stream_unavailable');
      case 'STREAM_STALLED':
        return new ApiError(503, 'server_error', `The stream stalled: ${reasonOf(error)}; retry once it is back.`, 'stream_stalled');
      case 'STREAM_CLOSED':
        return invalidRequest('The stream is closed or ended before the question could run.', 'stream_closed');
      case 'STREAM_SNAPSHOT_EXPIRED':
        return new ApiError(503, 'server_error', "The question took longer than the stream's window reserve; retry.", 'stream_busy');
      case 'INVALID_ARGUMENT':
      case 'CONFIG_INVALID':
        return invalidRequest(error.message, 'invalid_value');
      default:
        return new ApiError(500, 'server_error', `The model failed (${error.code}).`, 'internal_error');
    }
  }
  const framework = (typeof error === 'object' && error !== null ? error : {}) as FrameworkError;
  if (framework.validation?.length) return fromValidation(framework);
  const status = framework.statusCode ?? 500;
  if (status === 413) return new ApiError(413, 'invalid_request_error', framework.message ?? 'Request body is too large.', 'request_too_large');
  if (status === 415) return new ApiError(415, 'invalid_request_error', framework.message ?? 'Unsupported content type.', 'unsupported_content_type');
  if (status === 408) return new ApiError(408, 'timeout_error', 'The request body did not arrive in time.', 'request_timeout');
  if (status >= 400 && status < 500) {
    const code = framework.code?.includes('JSON') ? 'invalid_json' : 'invalid_request';
    return new ApiError(status, 'invalid_request_error', framework.message ?? 'Invalid request.', code);
  }
  return new ApiError(500, 'server_error', 'Internal server error.', 'internal_error');
}
