// What the visual path tells the LLM: the model describes each of a split's videos ("Describe the video.", greedy)
// and its description is scored against the true caption (`captionScene` of `scenes.json`) fact by fact: the number
// of shapes, the colour–shape pairs named, and the pair that flashed. As the chance reference, each true caption is
// scored against the next video's. A model whose LLM answers from a caption in words (`answer-reading`) but scores at
// the reference here is held back by its visual tokens, not its LLM.
// Usage: node bench/describe.mjs <modelDir> <synthDir> [split=test] [videos=100]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '@bvllm/core';
import { InferenceSession } from '@bvllm/pipeline';
import { captionScene } from '@bvllm/synth';

const [modelDir, dataDir, split = 'test', count = '100'] = process.argv.slice(2);
if (!modelDir || !dataDir) throw new Error('usage: node bench/describe.mjs <modelDir> <synthDir> [split] [videos]');
await initBackend();
const session = await InferenceSession.open(modelDir);
const records = JSON.parse(readFileSync(join(dataDir, 'scenes.json'), 'utf8'))
  .filter((r) => r.video.startsWith(`videos/${split}-`))
  .slice(0, Number(count));

/** The facts a caption states: how many shapes, which colour–shape pairs, which pair flashed (or null). */
function facts(caption) {
  const count = caption.match(/^(\d+) shapes? appears?/)?.[1] ?? null;
  const pairs = new Set([...caption.matchAll(/\ban? (\w+ \w+) (?:moves|stays|flashed)/g)].map((m) => m[1]));
  const flash = caption.match(/\ban? (\w+ \w+) flashed/)?.[1] ?? null;
  return { count, pairs, flash };
}

/** Tallies of one scoring: count right, pairs named that are true (precision) and true pairs named (recall), flash right. */
function tally() {
  return { count: 0, named: 0, namedTrue: 0, truth: 0, truthNamed: 0, flashes: 0, flashRight: 0 };
}
function score(into, said, truth) {
  if (said.count === truth.count) into.count++;
  into.named += said.pairs.size;
  into.namedTrue += [...said.pairs].filter((p) => truth.pairs.has(p)).length;
  into.truth += truth.pairs.size;
  into.truthNamed += [...truth.pairs].filter((p) => said.pairs.has(p)).length;
  if (truth.flash) {
    into.flashes++;
    if (said.flash === truth.flash) into.flashRight++;
  }
}

const described = tally();
const reference = tally();
const captions = records.map((r) => captionScene(r.scene));
const truths = captions.map(facts);
for (const [i, record] of records.entries()) {
  const video = await session.encode(join(dataDir, record.video));
  const { text } = await session.answer(video, [{ role: 'user', content: 'Describe the video.' }], { seed: 0, generation: { maxNewTokens: 64 } });
  video.close();
  score(described, facts(text), truths[i]);
  score(reference, truths[(i + 1) % truths.length], truths[i]);
  if (i < 3) console.log(`true: ${captions[i]}\nsaid: ${text}\n`);
}
const pct = (a, b) => (b ? ((100 * a) / b).toFixed(1) : '—');
console.log('| describer | shape count right | pairs named that are true | true pairs named | flashed pair right |');
console.log('|---|---|---|---|---|');
for (const [name, t] of [['model, from the video', described], ['another video\'s true caption', reference]])
  console.log(`| ${name} | ${pct(t.count, records.length)} | ${pct(t.namedTrue, t.named)} | ${pct(t.truthNamed, t.truth)} | ${pct(t.flashRight, t.flashes)} (of ${t.flashes}) |`);
console.log(`\n${records.length} ${split} videos; ${modelDir}`);
await session.close();
