/**
 * Errors Node's HTTP parser finds before Fastify sees a request (a bad Content-Length, headers over 16 KiB, a
 * malformed request line) answered in the OpenAI error shape, like every other 4xx. Fastify's default writes its
 * own `{error, message, statusCode}` body.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { ApiError } from './api-error.js';

/** Node's parser codes → status, type, code and a message naming the client's own mistake. */
function fromParserError(error: NodeJS.ErrnoException): ApiError {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new ApiError(431, 'invalid_request_error', 'The request headers are too large.', 'headers_too_large');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ERR_HTTP_HEADERS_TIMEOUT':
      return new ApiError(408, 'timeout_error', 'The request did not arrive in time.', 'request_timeout');
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return new ApiError(400, 'invalid_request_error', 'The Content-Length header is invalid.', 'invalid_content_length');
    default:
      return new ApiError(400, 'invalid_request_error', 'The request is not valid HTTP.', 'invalid_http');
  }
}

/** Fastify's `clientErrorHandler`: writes the error response and closes the connection (its framing is unknown). */
export function clientErrorHandler(error: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection has nobody to answer.
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const api = fromParserError(error);
  const body = JSON.stringify(api.body());
  socket.end(
    `HTTP/1.1 ${api.status} ${STATUS_CODES[api.status] ?? 'Error'}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
