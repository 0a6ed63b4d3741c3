// Where the answers come from: on a split's questions, how often the model's first answer token is right (teacher
// forced, greedy) when the `<video>` slot holds the video's own frames, another video's frames, or the video's caption
// as text (the benchmark's `scenes.json`, as the recipe's LLM warm-up reads it), or the true label tokens of up to 4
// frames picked with every object in view (label-tokens.ts: what the aligned visual path should say). Own ≈ another
// video: the visual tokens do not decide the answer. Caption or label tokens ≈ chance: the LLM cannot answer even from
// the facts, so no visual training can help yet (run it on `<work>/base` right after the recipe's warm-up).
// Usage: node bench/answer-reading.mjs <modelDir> <synthDir> [split=test] [questions=400]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng, initBackend, tf } from '@bvllm/core';
import { collateBvllm, disposeFeatures, loadModel, precomputeFeatures, stageDataset } from '@bvllm/pipeline';
import { collateLabelTokens, labelTokens, videoCellLabels } from '../dist/index.js';
import { spliceVisual } from '@bvllm/llm-bridge';
import { PAIR_CLASSES, captionScene } from '@bvllm/synth';
import { CaptionInContextDataset, stage2Config } from '@bvllm/trainer';

const [modelDir, dataDir, split = 'test', count = '400'] = process.argv.slice(2);
if (!modelDir || !dataDir) throw new Error('usage: node bench/answer-reading.mjs <modelDir> <synthDir> [split] [questions]');
await initBackend();
const model = loadModel(modelDir);
const annotations = join(dataDir, `${split}.json`);
const entries = JSON.parse(readFileSync(annotations, 'utf8'));
const videos = stageDataset(model, stage2Config.parse({ stage: 'stage2', data: { annotations, folder: dataDir } }));
const scenes = JSON.parse(readFileSync(join(dataDir, 'scenes.json'), 'utf8'));
const captionIds = new Map(scenes.map((r) => [join(dataDir, r.video), model.assets.tokenizer.encode(captionScene(r.scene))]));
const cellLabels = new Map(scenes.map((r) => [join(dataDir, r.video), videoCellLabels(r.scene, model.config.vision.trainFrames)]));
const captions = new CaptionInContextDataset(videos, captionIds);
const n = Math.min(Number(count), videos.length);
const samples = Array.from({ length: n }, (_, i) => videos.get(i));
const features = await precomputeFeatures(model, { length: n, get: (i) => samples[i] }, model.config.vision.trainFrames);

/** Per `task/form`, [right, asked] for the first supervised token of each sample. */
function firstTokenAccuracy(batchAt) {
  const tally = {};
  for (let start = 0; start < n; start += 16) {
    const batch = batchAt(start, Math.min(16, n - start));
    tf.tidy(() => {
      const context = { training: false, rng: Rng.fromSeed(0) };
      const visual = batch.map((s) => {
        if (s.cells) return [labelTokens(model, tf.tensor2d(s.cells, [s.cells.length / PAIR_CLASSES, PAIR_CLASSES]))];
        return s.features ? [model.visualPath(s.features, s.question, context).visualEmbeds] : [];
      });
      const spliced = spliceVisual(model.llm, { inputIds: batch.map((s) => s.inputIds), labels: batch.map((s) => s.labels), visual });
      const { logits } = model.llm.forward({ inputsEmbeds: spliced.inputsEmbeds, attentionMask: spliced.attentionMask, logitsFor: 'all' });
      const predicted = tf.argMax(logits, -1).arraySync();
      spliced.labels.arraySync().forEach((labels, i) => {
        const at = labels.findIndex((l) => l >= 0);
        const { task, form } = entries[start + i];
        const row = (tally[`${task}/${form}`] ??= [0, 0]);
        row[1] += 1;
        if (predicted[i][at - 1] === labels[at]) row[0] += 1;
      });
    });
    tf.dispose(batch.flatMap((s) => (s.question ? [s.question.inputIds, s.question.attentionMask] : [])));
  }
  return tally;
}

const own = (start, size) => collateBvllm(model, samples.slice(start, start + size), features);
// Samples come in pairs (MCQA and open form of one video): shifting by two pairs each question with another video.
const other = (start, size) => own(start, size).map((s, i, all) => ({ ...s, features: all[(i + 2) % all.length].features }));
const caption = (start, size) => collateBvllm(model, Array.from({ length: size }, (_, i) => captions.get(start + i)), new Map());
const labelRng = Rng.fromSeed(0);
const labels = (start, size) => collateLabelTokens(samples.slice(start, start + size), cellLabels, 4, labelRng);
const rate = ([right, asked]) => (100 * right) / asked;
const rows = [['own video', own], ['another video', other], ['caption as text', caption], ['label tokens', labels]].map(([name, batchAt]) => [name, firstTokenAccuracy(batchAt)]);
const keys = Object.keys(rows[0][1]).sort();
console.log(`| context | all | ${keys.join(' | ')} |`);
console.log(`|---|---|${keys.map(() => '---|').join('')}`);
for (const [name, tally] of rows) {
  const total = Object.values(tally).reduce(([a, b], [c, d]) => [a + c, b + d], [0, 0]);
  console.log(`| ${name} | ${rate(total).toFixed(1)} | ${keys.map((k) => rate(tally[k]).toFixed(0)).join(' | ')} |`);
}
console.log(`\nfirst answer token, teacher forced, % right; ${n} ${split} questions; ${modelDir}`);
for (const f of features.values()) disposeFeatures(f);
model.dispose();
