/**
 * Request/response calls to one worker thread, for work that must not hold the event loop (onnxruntime's runs,
 * CLIP resizes, large JSON bodies). The thread starts on the first call and is unreferenced while no call is
 * pending, so an idle channel never keeps the process alive. If the thread dies, every pending call is rejected
 * and the next call starts a new one.
 *
 * The protocol is the worker's: each message posted carries an `id`, and the worker answers each with one message
 * carrying the same `id`.
 */
import { Worker, type TransferListItem } from 'node:worker_threads';

export class WorkerChannel<Request extends object, Reply extends { id: number }> {
  private worker: Worker | undefined;
  private readonly calls = new Map<number, { resolve(reply: Reply): void; reject(error: Error): void }>();
  private next = 0;

  /**
   * @param script the worker's module (a path or a file: URL).
   * @param failure turns the reason a thread failed into the error pending calls are rejected with.
   */
  constructor(
    private readonly script: string | URL,
    private readonly failure: (reason: string, cause?: unknown) => Error,
  ) {}

  /** Calls not answered yet. */
  get pending(): number {
    return this.calls.size;
  }

  /** Posts `request` with a fresh `id` (moving `transfer`), and resolves with the worker's answer to it. */
  call(request: Request, transfer: readonly TransferListItem[] = []): Promise<Reply> {
    const worker = this.start();
    const id = this.next++;
    return new Promise<Reply>((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      worker.ref();
      try {
        worker.postMessage({ ...request, id }, transfer as TransferListItem[]);
      } catch (error) {
        this.settle(id);
        reject(this.failure(error instanceof Error ? error.message : String(error), error));
      }
    });
  }

  /** Stops the thread; pending calls are rejected. */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(this.script);
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const call = this.calls.get(reply.id);
      if (!call) return;
      this.settle(reply.id);
      call.resolve(reply);
    });
    const fail = (error: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const call of this.calls.values()) call.reject(error);
      this.calls.clear();
    };
    worker.on('error', (error) => fail(this.failure(error.message, error)));
    worker.on('exit', (code) => fail(this.failure(`the worker thread exited (code ${code})`)));
    this.worker = worker;
    return worker;
  }

  private settle(id: number): void {
    this.calls.delete(id);
    if (this.calls.size === 0) this.worker?.unref();
  }
}
