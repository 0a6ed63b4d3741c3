/**
 * The one TensorFlow.js instance of the project. Every @bvllm package takes `tf` from here, never from its own
 * dependency, so tensors made by one stage are valid in the next and there is a single engine to count leaks on.
 *
 * Backends, fastest first: tfjs-node-gpu (CUDA), tfjs-node (native libtensorflow), WASM (SIMD, one thread in Node),
 * then the pure-JS cpu backend. The native ones are optional peer dependencies because their install script
 * downloads libtensorflow from outside the npm registry; where that worked for a user, we use them.
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core registers no gradients by itself (the union package @tensorflow/tfjs does this); training needs them.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { BackendUnavailableError } from './errors.js';

export { tf };

/** The names users pass in `BVLLM_BACKEND`, mapped to tfjs backend names. */
export type BackendChoice = 'gpu' | 'node' | 'wasm' | 'cpu';

const tfjsName: Record<BackendChoice, string> = { gpu: 'tensorflow', node: 'tensorflow', wasm: 'wasm', cpu: 'cpu' };
const nativePackage: Partial<Record<BackendChoice, string>> = {
  gpu: '@tensorflow/tfjs-node-gpu',
  node: '@tensorflow/tfjs-node',
};

/** What {@link initBackend} chose and why, for `bvllm doctor` and logs. */
export interface BackendInfo {
  choice: BackendChoice;
  /** tfjs's own backend name (`tensorflow`, `wasm`, `cpu`). */
  tfjsBackend: string;
  tfjsVersion: string;
  /** Threads the backend computes with (WASM in Node runs single-threaded). */
  threads: number;
  simd: boolean;
  /** Why each faster backend was passed over. */
  skipped: { choice: BackendChoice; reason: string }[];
  forced: boolean;
}

let current: Promise<BackendInfo> | undefined;

async function tryNative(choice: 'gpu' | 'node'): Promise<void> {
  const pkg = nativePackage[choice]!;
  try {
    await import(pkg);
  } catch (cause) {
    throw new BackendUnavailableError(choice, `${pkg} is not installed or failed to load`, { cause });
  }
  if (!(await tf.setBackend('tensorflow'))) throw new BackendUnavailableError(choice, `${pkg} loaded but tfjs refused it`);
  if (choice === 'gpu') {
    // tfjs-node-gpu falls back to CPU kernels silently when CUDA does not load; ask TensorFlow for a GPU device.
    const devices = (tf.backend() as unknown as { binding?: { isUsingGpuDevice?: () => boolean } }).binding;
    if (devices?.isUsingGpuDevice && !devices.isUsingGpuDevice()) throw new BackendUnavailableError('gpu', 'CUDA did not load');
  }
}

async function trySet(choice: BackendChoice): Promise<void> {
  if (choice === 'gpu' || choice === 'node') return tryNative(choice);
  let ok = false;
  try {
    ok = await tf.setBackend(tfjsName[choice]);
  } catch (cause) {
    throw new BackendUnavailableError(choice, 'initialisation failed', { cause });
  }
  if (!ok) throw new BackendUnavailableError(choice, 'initialisation failed');
}

function parseChoice(value: string | undefined): BackendChoice | undefined {
  if (value === undefined || value === '' || value === 'auto') return undefined;
  if (value === 'gpu' || value === 'node' || value === 'wasm' || value === 'cpu') return value;
  throw new BackendUnavailableError(value, 'BVLLM_BACKEND must be one of gpu, node, wasm, cpu, auto');
}

async function select(forcedName: string | undefined): Promise<BackendInfo> {
  const forced = parseChoice(forcedName);
  const order: BackendChoice[] = forced ? [forced] : ['gpu', 'node', 'wasm', 'cpu'];
  const skipped: BackendInfo['skipped'] = [];
  for (const choice of order) {
    try {
      await trySet(choice);
      await tf.ready();
      const wasm = choice === 'wasm';
      return {
        choice,
        tfjsBackend: tf.getBackend(),
        tfjsVersion: tf.version_core,
        threads: wasm || choice === 'cpu' ? 1 : (await import('node:os')).availableParallelism(),
        simd: wasm ? tf.env().getBool('WASM_HAS_SIMD_SUPPORT') : choice !== 'cpu',
        skipped,
        forced: forced !== undefined,
      };
    } catch (error) {
      if (forced) throw error;
      skipped.push({ choice, reason: error instanceof Error ? error.message : String(error) });
    }
  }
  throw new BackendUnavailableError('auto', `no backend could start: ${skipped.map((s) => `${s.choice}: ${s.reason}`).join('; ')}`);
}

/**
 * Chooses and starts the backend once per process (later calls return the same info). `BVLLM_BACKEND`
 * (`gpu|node|wasm|cpu`) forces one and fails with {@link BackendUnavailableError} if it cannot start.
 */
export function initBackend(options: { backend?: string } = {}): Promise<BackendInfo> {
  current ??= select(options.backend ?? process.env.BVLLM_BACKEND).catch((error: unknown) => {
    current = undefined;
    throw error;
  });
  return current;
}
