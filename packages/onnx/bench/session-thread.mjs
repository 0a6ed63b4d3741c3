// What running a session on the onnxruntime worker thread costs per call, against the calling thread, side by side:
// a tiny graph (the message hop alone) and a [1, 4096]·[4096, 1024] MatMul (a decoder-sized call, 16 MB of weights,
// 16 KB in, 4 KB out), and the event loop's worst stall during the MatMul calls. Run after `pnpm build`.
import { createSession, encodeModel, GraphBuilder, ort } from '../dist/index.js';

const REPS = Number(process.env.REPS ?? 200);

function negGraph() {
  const g = new GraphBuilder('neg');
  g.output('y', 'float32', ['n'], g.op.neg(g.input('x', 'float32', ['n'])));
  return encodeModel(g);
}

function matmulGraph(k, n) {
  const g = new GraphBuilder('mm');
  const w = g.initializer('w', Float32Array.from({ length: k * n }, (_, i) => Math.sin(i) / Math.sqrt(k)), [k, n]);
  g.output('y', 'float32', [1, n], g.op.matMul(g.input('x', 'float32', [1, k]), w));
  return encodeModel(g);
}

async function time(model, feeds, thread) {
  const session = await createSession(model, { thread });
  for (let i = 0; i < 10; i++) await session.run(feeds());
  let worst = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 1);
  const start = performance.now();
  for (let i = 0; i < REPS; i++) await session.run(feeds());
  const perCall = (performance.now() - start) / REPS;
  clearInterval(timer);
  await session.release();
  return { perCall, worst };
}

const cases = [
  ['neg, 2 floats', negGraph(), () => ({ x: new ort.Tensor('float32', Float32Array.from([1, -2]), [2]) })],
  ['MatMul [1,4096]·[4096,1024]', matmulGraph(4096, 1024), () => ({ x: new ort.Tensor('float32', new Float32Array(4096).fill(0.5), [1, 4096]) })],
];
console.log(`onnxruntime session thread, ${REPS} calls each (load ${(await import('node:fs')).readFileSync('/proc/loadavg', 'utf8').split(' ')[0]})`);
for (const [name, model, feeds] of cases) {
  const main = await time(model, feeds, 'main');
  const worker = await time(model, feeds, 'worker');
  console.log(
    `${name}: main ${main.perCall.toFixed(3)} ms/call, worker ${worker.perCall.toFixed(3)} ms/call (${(worker.perCall / main.perCall).toFixed(2)}×, +${(worker.perCall - main.perCall).toFixed(3)} ms); ` +
      `worst timer gap main ${main.worst.toFixed(1)} ms, worker ${worker.worst.toFixed(1)} ms`,
  );
}
