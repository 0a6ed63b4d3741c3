export { createServer, type BvllmServer, type CreateServerOptions } from './build-server.js';
export { serverConfigSchema, type ServerConfig, type ServerConfigInput } from './server-config.js';
export { ApiError, type ApiErrorType } from './api-error.js';
export type { ChatRequest } from './chat-request.js';
export type { SelectionPayload } from './chat-completion.js';
export { parseServerFlags, SERVER_FLAGS_HELP, type ServerFlags } from './server-flags.js';
