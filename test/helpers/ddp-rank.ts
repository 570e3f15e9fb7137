// One rank of a data-parallel test job, started by test/distributed.test.ts as its own process
// (node --import=tsx test/helpers/ddp-rank.ts MODE ...), with RANK, WORLD_SIZE, MASTER_ADDR and
// MASTER_PORT in its environment as a launcher would set them. One intra-op thread per rank.
//   parity CASE_FILE OUT_FILE   the DDP fixture's steps on this rank's half of each batch
//   frozen CASE_FILE OUT_FILE   the same with BatchNorm frozen (eval mode)
//   single CASE_FILE OUT_FILE   no process group: the fixture's whole batches in one process,
//                               BatchNorm frozen
//   fit DIR OUT_FILE            fit() for 3 epochs on a small generated data set, checkpoints
//                               in DIR; RESUME=FILE resumes, DIE_AT=N makes rank 1 SIGKILL
//                               itself at iteration N (a rank crashing mid-epoch)
// Results go to OUT_FILE.<rank> (safetensors: loss, final/<key>); a DistributedError is printed as one
// JSON line {"error": name, "code", "lostRank", "message"} and the process exits with status 3.
import {
  createResNet,
  DistributedError,
  fit,
  ImageDataset,
  loadCheckpoint,
  initProcessGroup,
  readSafetensors,
  setNumThreads,
  Tensor,
  writeSafetensors,
  type ResNetSpecOptions,
  type TrainerOptions,
} from '../../lib/index.ts';

setNumThreads(1);
const [mode, caseFile, outFile] = process.argv.slice(2);

function rows<T extends Float32Array | BigInt64Array>(t: Tensor, rank: number, batch: number): Tensor<T> {
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  const data = (t.data as T).subarray(rank * batch * per, (rank + 1) * batch * per) as T;
  return new Tensor(data, [batch, ...t.shape.slice(1)]);
}

async function parity(distributed: boolean, frozen: boolean): Promise<void> {
  const { tensors, metadata } = await readSafetensors(caseFile!);
  const pick = (prefix: string) => Object.fromEntries(Object.entries(tensors).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  const batch = Number(metadata.batch);
  const world = Number(metadata.world);
  const steps = Number(metadata.steps);
  const accumulateAt = JSON.parse(metadata.accumulateAt!) as number[];
  const group = distributed ? await initProcessGroup({ timeoutMs: 30_000 }) : null;
  const rank = group?.rank ?? 0;
  const model = await createResNet({ ...(JSON.parse(metadata.model!) as ResNetSpecOptions), seed: 7 });
  await model.loadStateDict(pick(`start/${rank}/`));
  const options = JSON.parse(metadata.trainer!) as TrainerOptions;
  // Without a group: one process on the whole batch, BatchNorm in eval mode (its statistics are
  // per batch, so only then do half batches on two ranks equal one whole batch).
  const trainer = model.trainer({ ...options, ...(group && { distributed: group }), ...(frozen && { freezeBatchNorm: true }) });
  const losses = new Float64Array(steps);
  for (let k = 0; k < steps; k++) {
    const x = tensors[`input/${k}`]!;
    const y = tensors[`labels/${k}`]!;
    if (accumulateAt.includes(k)) {
      const xe = tensors[`extra/${k}`]!;
      const ye = tensors[`extra_labels/${k}`]!;
      await trainer.accumulate(group ? rows(xe, rank, batch) : xe, group ? rows(ye, rank, batch) : ye);
    }
    const r = await trainer.step(group ? rows(x, rank, batch) : x, group ? rows(y, rank, batch) : y);
    losses[k] = r.loss;
  }
  const out: Record<string, Tensor> = { loss: new Tensor(losses, [steps]) };
  for (const [key, t] of Object.entries(await model.stateDict())) out[`final/${key}`] = t;
  await writeSafetensors(`${outFile}.${rank}`, out, { world: String(world) });
  model.dispose();
  await group?.destroy();
}

/** 96 images 3x8x8 of 4 classes, the same on every rank. */
function smallDataset(): ImageDataset {
  const n = 96;
  const pixels = new Uint8Array(n * 3 * 8 * 8);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 24;
  return new ImageDataset({ pixels, shape: [n, 3, 8, 8], labels: Array.from({ length: n }, (_, i) => i % 4), classes: ['a', 'b', 'c', 'd'] });
}

async function fitRun(): Promise<void> {
  const group = await initProcessGroup({ timeoutMs: Number(process.env.DDP_TEST_TIMEOUT_MS ?? 30_000) });
  const model = await createResNet({ block: 'basic', stem: 'cifar', layers: [1, 1, 1], widths: [8, 16, 32], shortcut: 'A', numClasses: 4, seed: 3 + group.rank });
  const trainer = model.trainer({ optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 1e-4 }, distributed: group });
  if (process.env.RESUME) await loadCheckpoint(process.env.RESUME, model, trainer);
  const dieAt = Number(process.env.DIE_AT ?? -1);
  const data = smallDataset();
  const report = await fit(model, {
    train: data,
    val: data,
    epochs: 3,
    batchSize: 8,
    trainer,
    seed: 5,
    augment: { crop: { padding: 2 }, hflip: true },
    checkpointDir: caseFile!,
    progressEvery: 1,
    onProgress: (p) => {
      if (group.rank === 1 && p.iteration === dieAt) process.kill(process.pid, 'SIGKILL');
    },
  });
  const out: Record<string, Tensor> = {};
  for (const [key, t] of Object.entries(await model.stateDict())) out[`final/${key}`] = t;
  out.val = new Tensor(Float64Array.from(report.epochs.map((e) => e.val!.top1)), [report.epochs.length]);
  out.trainLoss = new Tensor(Float64Array.from(report.epochs.map((e) => e.trainLoss)), [report.epochs.length]);
  await writeSafetensors(`${outFile}.${group.rank}`, out, { iterations: String(report.iterations) });
  await group.barrier();
  await group.destroy();
}

async function forever(): Promise<void> {
  const group = await initProcessGroup({ timeoutMs: Number(process.env.DDP_TEST_TIMEOUT_MS ?? 30_000) });
  const model = await createResNet({ block: 'basic', stem: 'cifar', layers: [1, 1, 1], widths: [16, 32, 64], shortcut: 'A', numClasses: 10, seed: 1 });
  const trainer = model.trainer({ optimizer: { type: 'sgd', lr: 0.01 }, distributed: group });
  const x = new Tensor(new Float32Array(8 * 3 * 16 * 16).fill(0.5), [8, 3, 16, 16]);
  for (let step = 1; ; step++) {
    await trainer.step(x, [0, 1, 2, 3, 4, 5, 6, 7]);
    process.stdout.write(`step ${step}\n`);
  }
}

try {
  if (mode === 'parity') await parity(true, false);
  else if (mode === 'frozen') await parity(true, true);
  else if (mode === 'single') await parity(false, true);
  else if (mode === 'fit') await fitRun();
  else if (mode === 'forever') await forever();
  else throw new Error(`unknown mode ${mode}`);
} catch (error) {
  const e = error as DistributedError;
  process.stdout.write(`${JSON.stringify({ error: e.name, code: e.code, lostRank: e instanceof DistributedError ? e.lostRank ?? null : null, message: e.message })}\n`);
  process.exit(3);
}
