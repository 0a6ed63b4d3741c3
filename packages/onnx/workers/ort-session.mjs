// The onnxruntime-node thread of `createSession` (src/session.ts): it holds every worker session of the process.
// ORT's `run` computes on the calling thread, so on the main thread it would hold the event loop for a whole forward
// pass. Plain JavaScript so that it loads as is from the package's source (under vitest) and from its build.
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

const sessions = new Map();

const plain = (list) => list.map((m) => ({ ...m, shape: m.shape ? [...m.shape] : m.shape }));
const errorOf = (error) => ({ message: error instanceof Error ? error.message : String(error) });

function post(message, buffers) {
  try {
    parentPort.postMessage(message, buffers);
  } catch {
    // A buffer onnxruntime cannot give away (external memory) is copied instead.
    parentPort.postMessage(message);
  }
}

async function handle({ kind, id, sid, model, options, feeds }) {
  if (kind === 'create') {
    const session = await ort.InferenceSession.create(model, options);
    sessions.set(sid, session);
    return { meta: { inputNames: [...session.inputNames], outputNames: [...session.outputNames], inputMetadata: plain(session.inputMetadata), outputMetadata: plain(session.outputMetadata) } };
  }
  const session = sessions.get(sid);
  if (!session) throw new Error('the session was released');
  if (kind === 'release') {
    sessions.delete(sid);
    await session.release();
    return {};
  }
  const inputs = Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, new ort.Tensor(t.type, t.data, t.dims)]));
  const outputs = await session.run(inputs);
  const result = {};
  const buffers = [];
  for (const [name, t] of Object.entries(outputs)) {
    result[name] = { type: t.type, dims: [...t.dims], data: t.data };
    if (ArrayBuffer.isView(t.data) && !buffers.includes(t.data.buffer)) buffers.push(t.data.buffer);
  }
  return { outputs: result, buffers };
}

parentPort.on('message', async (message) => {
  try {
    const { buffers, ...reply } = await handle(message);
    post({ id: message.id, ...reply }, buffers);
  } catch (error) {
    post({ id: message.id, error: errorOf(error) });
  }
});
