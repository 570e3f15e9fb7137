// torchvision's transforms as the streaming pipeline runs them: RandomResizedCrop's box arithmetic
// replayed on the very draws torchvision 0.14 made (test/fixtures/generate_crops.py: 288 cases,
// both the ten-tries path and the fallback), and the checks of a transform list.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '../lib/errors.ts';
import { randomResizedCropBox, T, toPipeline, type Draws } from '../lib/stream/transforms.ts';
import { ensureGenerated } from './helpers/fixtures.ts';

interface Case {
  width: number;
  height: number;
  scale: [number, number];
  ratio: [number, number];
  draws: Array<['uniform' | 'randint', number, number, number]>;
  box: [number, number, number, number];
}

test('RandomResizedCrop: the same box as torchvision\'s get_params for the same draws, in every case', (t) => {
  const dir = ensureGenerated('generate_crops.py', 'crops', { outputs: ['crops.json'] });
  const cases = JSON.parse(readFileSync(join(dir, 'crops.json'), 'utf8')) as Case[];
  t.true(cases.length >= 200);
  let fallbacks = 0;
  for (const [k, c] of cases.entries()) {
    let next = 0;
    const take = (kind: 'uniform' | 'randint', low: number, high: number) => {
      const d = c.draws[next++];
      if (!d || d[0] !== kind || Math.abs(d[1] - low) > 1e-6 || Math.abs(d[2] - high) > 1e-6) {
        throw new Error(`case ${k}: draw ${next - 1} is ${JSON.stringify(d)}, we asked ${kind}(${low}, ${high})`);
      }
      return d[3];
    };
    const draws: Draws = { uniform: (low, high) => take('uniform', low, high), randint: (low, high) => take('randint', low, high) };
    const box = randomResizedCropBox(c.width, c.height, c.scale, c.ratio, draws);
    t.deepEqual(box, c.box, `case ${k}: ${c.width}x${c.height} scale ${c.scale} ratio ${c.ratio}`);
    t.is(next, c.draws.length, `case ${k}: every draw used, no more`);
    if (!c.draws.some((d) => d[0] === 'randint')) fallbacks++;
  }
  // Both paths are covered: a box from the ten tries, and the centre-crop fallback.
  t.true(fallbacks > 20 && fallbacks < cases.length - 20, `${fallbacks} fallbacks`);
});

test('transform lists: the supported shapes, and clear errors for the others', (t) => {
  const normalize = T.Normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25]);
  const train = toPipeline([T.RandomResizedCrop(160), T.RandomHorizontalFlip(), normalize, T.RandomErasing({ p: 0.25 })]);
  t.deepEqual(train.size, [160, 160]);
  t.is(train.flip, 0.5);
  t.deepEqual(train.crop!.scale, [0.08, 1]);
  t.deepEqual(toPipeline([T.Resize(256), T.CenterCrop(224), normalize]).size, [224, 224]);
  t.deepEqual(toPipeline([T.CenterCrop(100), normalize]).size, [100, 100]);
  t.deepEqual(toPipeline([T.RandomResizedCrop([100, 120]), normalize]).size, [100, 120]);
  const bad: Array<[unknown[], RegExp]> = [
    [[], /non-empty array of transforms/],
    [[normalize, T.RandomResizedCrop(224)], /in the order .* RandomResizedCrop after Normalize/],
    [[T.RandomResizedCrop(224), T.CenterCrop(224), normalize], /not both/],
    [[T.Resize(256), normalize], /fixes the output size/],
    [[T.CenterCrop(224)], /Normalize/],
    [[T.CenterCrop([100, 120]), normalize], /square CenterCrop/],
    [[{ type: 'ColorJitter' }], /a transform made by T/],
  ];
  for (const [list, message] of bad) t.throws(() => toPipeline(list as never), { instanceOf: InvalidArgumentError, message });
  t.throws(() => T.RandomResizedCrop(224, { scale: [0.9, 0.1] }), { instanceOf: InvalidArgumentError, message: /low <= high/ });
  t.throws(() => T.RandomHorizontalFlip(2), { instanceOf: InvalidArgumentError, message: /probability/ });
  t.throws(() => T.Normalize([0.5, 0.5], [1, 1, 1]), { instanceOf: InvalidArgumentError, message: /3 finite numbers for mean/ });
});
