// A forward runs on the model's own thread: timers keep firing on the main thread meanwhile.
import test from 'ava';
import { resnet50 } from '../lib/index.ts';
import { randomTensor, watchEventLoop } from './helpers/inputs.ts';

test('the event loop keeps turning while a forward runs', async (t) => {
  const model = await resnet50({ numClasses: 10, seed: 0 });
  const x = randomTensor([4, 3, 224, 224]);
  await model.forward(randomTensor([1, 3, 64, 64])); // warm-up

  const loop = watchEventLoop(5);
  const started = performance.now();
  await model.forward(x);
  const elapsed = performance.now() - started;
  const { ticks, longestGap } = loop.stop();
  model.dispose();

  t.log(`forward took ${elapsed.toFixed(0)} ms; the 5 ms timer fired ${ticks} times, longest gap ${longestGap.toFixed(1)} ms`);
  // A forward that blocked the loop would let the timer fire at most once, after it returned.
  t.true(ticks >= 5, `timer fired ${ticks} times during a ${elapsed.toFixed(0)} ms forward`);
  t.true(longestGap < elapsed, 'no gap between timer ticks as long as the forward itself');
});
