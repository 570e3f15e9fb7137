// A forward runs on the model's own thread: timers keep firing on the main thread meanwhile.
import test from 'ava';
import { resnet50 } from '../lib/index.ts';
import { randomTensor } from './helpers/inputs.ts';

test('the event loop keeps turning while a forward runs', async (t) => {
  const model = await resnet50({ numClasses: 10, seed: 0 });
  const x = randomTensor([4, 3, 224, 224]);
  await model.forward(randomTensor([1, 3, 64, 64])); // warm-up

  // No clock: a forward run on the main thread would return an already-settled promise, so no
  // timer could fire before the await resumes, and the loop would show no idle time meanwhile.
  let turns = 0;
  const timer = setInterval(() => turns++, 1);
  const before = performance.eventLoopUtilization();
  await model.forward(x);
  const loop = performance.eventLoopUtilization(before);
  clearInterval(timer);
  model.dispose();

  t.log(`the 1 ms timer fired ${turns} times during the forward; event-loop utilisation ${loop.utilization.toFixed(3)}`);
  t.true(turns >= 1, 'a timer fired while the forward ran');
  t.true(loop.idle > loop.active, `the main thread was mostly idle (active ${loop.active} ms, idle ${loop.idle} ms)`);
});
