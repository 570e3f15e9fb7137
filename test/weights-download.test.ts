// The weights registry and the download cache. Downloads go to a loopback HTTP server only, which
// serves a real checkpoint written by PyTorch (pretrained weights cannot be fetched in CI).
import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { DownloadError, HashMismatchError, InvalidArgumentError } from '../lib/errors.ts';
import { downloadWeights, torchHubCheckpointsDir, type DownloadProgress } from '../lib/weights/download.ts';
import { imagenetCategories, weightsEntry, weightsNames } from '../lib/weights/registry.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'weights-download-'));
const cacheDir = () => mkdtempSync(join(work, 'cache-'));

// A real torch.save file (zip format); 256x256 floats so it arrives in several chunks.
const checkpoint = join(work, 'tiny.pth');
execFileSync('/usr/bin/python3', ['-c', `import sys, torch
torch.manual_seed(0)
torch.save(torch.nn.Linear(256, 256).state_dict(), sys.argv[1])`, checkpoint]);
const bytes = readFileSync(checkpoint);
const digest = createHash('sha256').update(bytes).digest('hex');
const goodName = `tiny-${digest.slice(0, 8)}.pth`;
const badName = `tiny-${digest[0] === 'a' ? 'b' : 'a'}${digest.slice(1, 8)}.pth`;

const hits = new Map<string, number>();
const waiting: ServerResponse[] = []; // '/together/' holds requests until two have arrived
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sendSlowly(res: ServerResponse, pieces = 8, delayMs = 40) {
  const size = Math.ceil(bytes.length / pieces);
  for (let at = 0; at < bytes.length; at += size) {
    if (res.destroyed) return;
    res.write(bytes.subarray(at, at + size));
    await sleep(delayMs);
  }
  res.end();
}

const server = createServer((req, res) => {
  const url = req.url ?? '';
  hits.set(url, (hits.get(url) ?? 0) + 1);
  const route = url.split('/')[1];
  const half = bytes.subarray(0, bytes.length >> 1);
  const headers = { 'content-type': 'application/octet-stream', 'content-length': bytes.length };
  switch (route) {
    case 'good':
    case 'bad': // right bytes, wrong hash prefix in the name
      return res.writeHead(200, headers).end(bytes);
    case 'redirect':
      return res.writeHead(302, { location: url.replace('/redirect/', '/good/') }).end();
    case 'truncated': // promises more than it sends, then hangs up
      res.writeHead(200, headers).write(half, () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    case 'stall': // sends half, then nothing
      return void res.writeHead(200, headers).write(half);
    case 'slow':
      res.writeHead(200, headers);
      return void sendSlowly(res);
    case 'drip': // 10 bytes every 50 ms: always active, never done
      res.writeHead(200, headers);
      void (async () => {
        for (let at = 0; at < bytes.length && !res.destroyed; at += 10) {
          res.write(bytes.subarray(at, at + 10));
          await sleep(50);
        }
        res.end();
      })();
      return;
    case 'gzip': // encodes although the client asked for identity; Content-Length is the encoded size
      {
        const body = gzipSync(bytes);
        return res.writeHead(200, { ...headers, 'content-encoding': 'gzip', 'content-length': body.length }).end(body);
      }
    case 'together':
      res.writeHead(200, headers);
      waiting.push(res);
      if (waiting.length === 2) for (const r of waiting.splice(0)) void sendSlowly(r);
      return;
    default:
      return res.writeHead(404).end('not found');
  }
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
test.after.always(() => {
  server.closeAllConnections();
  server.close();
});

const onlyFile = (dir: string) => readdirSync(dir).sort(); // temp files would show up here too

test('downloads into the cache with the exact bytes and reports increasing progress', async (t) => {
  const dir = cacheDir();
  const seen: DownloadProgress[] = [];
  const path = await downloadWeights(`${base}/good/${goodName}`, { cacheDir: dir, progress: (p) => seen.push(p) });
  t.is(path, join(dir, goodName));
  t.deepEqual(readFileSync(path), bytes);
  t.deepEqual(onlyFile(dir), [goodName]);
  t.true(seen.length >= 1);
  for (let i = 1; i < seen.length; i++) t.true(seen[i]!.received > seen[i - 1]!.received);
  t.true(seen.every((p) => p.total === bytes.length));
  t.is(seen.at(-1)!.received, bytes.length);
});

test('a second call uses the cached file without a request', async (t) => {
  const dir = cacheDir();
  const url = `${base}/good/${goodName}?t=cache`;
  const first = await downloadWeights(url, { cacheDir: dir });
  t.is(hits.get(`/good/${goodName}?t=cache`), 1);
  t.is(await downloadWeights(url, { cacheDir: dir }), first);
  t.is(hits.get(`/good/${goodName}?t=cache`), 1);
});

test('redirects are followed; fileName names the cached file', async (t) => {
  const dir = cacheDir();
  const path = await downloadWeights(`${base}/redirect/${goodName}?t=redirect`, { cacheDir: dir });
  t.deepEqual(readFileSync(path), bytes);
  t.is(hits.get(`/good/${goodName}?t=redirect`), 1);
  const renamed = await downloadWeights(`${base}/good/${goodName}`, { cacheDir: dir, fileName: 'renamed.pth' });
  t.is(renamed, join(dir, 'renamed.pth'));
});

test('a wrong hash prefix is a HashMismatchError and leaves nothing in the cache', async (t) => {
  const dir = cacheDir();
  const error = await t.throwsAsync(downloadWeights(`${base}/bad/${badName}`, { cacheDir: dir }), {
    instanceOf: HashMismatchError,
  });
  t.true(error!.message.includes(badName.slice(5, 13)) && error!.message.includes(digest));
  t.is(error!.code, 'ERR_RESNET_HASH_MISMATCH');
  t.deepEqual(onlyFile(dir), []);
  // checkHash: false accepts it, as torch.hub's check_hash=False does.
  await downloadWeights(`${base}/bad/${badName}`, { cacheDir: dir, checkHash: false });
  t.deepEqual(onlyFile(dir), [badName]);
});

test('a truncated body is a DownloadError and leaves nothing', async (t) => {
  const dir = cacheDir();
  const error = await t.throwsAsync(downloadWeights(`${base}/truncated/${goodName}`, { cacheDir: dir }), { instanceOf: DownloadError });
  // The server sends half and closes; how much of that half arrives before the close is noticed
  // depends on the transport, so the count is at most the half, never the whole.
  const received = Number(new RegExp(`after (\\d+) of ${bytes.length} bytes`).exec(error.message)?.[1]);
  t.true(received > 0 && received <= bytes.length >> 1, error.message);
  t.deepEqual(onlyFile(dir), []);
});

test('HTTP 404 is a DownloadError naming the status and the URL', async (t) => {
  const dir = cacheDir();
  const url = `${base}/missing/${goodName}`;
  const error = await t.throwsAsync(downloadWeights(url, { cacheDir: dir }), { instanceOf: DownloadError });
  t.true(error!.message.includes('404') && error!.message.includes(url));
  t.deepEqual(onlyFile(dir), []);
});

test('a connection refused is a DownloadError with the cause', async (t) => {
  // A port that was just free: nothing listens there.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  const error = await t.throwsAsync(downloadWeights(`http://127.0.0.1:${port}/${goodName}`, { cacheDir: cacheDir() }), {
    instanceOf: DownloadError,
  });
  t.regex(error!.message, /ECONNREFUSED/);
});

test('a server that stalls mid-body times out with a DownloadError and leaves nothing', async (t) => {
  const dir = cacheDir();
  await t.throwsAsync(downloadWeights(`${base}/stall/${goodName}`, { cacheDir: dir, timeoutMs: 300 }), {
    instanceOf: DownloadError,
    message: /No data from .* for 300 ms \(timeout\)/,
  });
  t.deepEqual(onlyFile(dir), []);
});

// Hardening: a server that drips bytes keeps the inactivity timeout from firing; the rate and the
// deadline stop it.
test('a dripping server fails the minimum rate, or the deadline, and leaves nothing', async (t) => {
  const dir = cacheDir();
  // The drip never pauses, so only the rate check can stop it, unless the machine itself stalls this
  // process for a whole window (a loaded CI host can): then the inactivity timeout fires first, which
  // is right too. Were the rate check broken, neither would fire and the download would succeed.
  await t.throwsAsync(downloadWeights(`${base}/drip/${goodName}?t=rate`, { cacheDir: dir, timeoutMs: 2000 }), {
    instanceOf: DownloadError,
    message: /was too slow: \d+ bytes in 2000 ms, below the minimum of 1024 bytes\/s \(minBytesPerSecond\)|No data from .* for 2000 ms \(timeout\)/,
  });
  await t.throwsAsync(downloadWeights(`${base}/drip/${goodName}?t=deadline`, { cacheDir: dir, minBytesPerSecond: 0, deadlineMs: 300 }), {
    instanceOf: DownloadError,
    message: /did not finish within 300 ms \(deadlineMs\), \d+ bytes received/,
  });
  t.deepEqual(onlyFile(dir), []);
  await t.throwsAsync(downloadWeights(`${base}/good/${goodName}`, { cacheDir: dir, minBytesPerSecond: -1 }), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(downloadWeights(`${base}/good/${goodName}`, { cacheDir: dir, deadlineMs: 0 }), { instanceOf: InvalidArgumentError });
});

test('a gzip-encoded response is decoded and checked by its hash, not reported as truncated', async (t) => {
  const dir = cacheDir();
  const path = await downloadWeights(`${base}/gzip/${goodName}`, { cacheDir: dir });
  t.true(readFileSync(path).equals(bytes));
  await t.throwsAsync(downloadWeights(`${base}/gzip/${badName}`, { cacheDir: dir }), { instanceOf: HashMismatchError });
});

test('a cache folder that is a file is a DownloadError that says so', async (t) => {
  const file = join(cacheDir(), 'not-a-folder');
  writeFileSync(file, 'x');
  for (const dir of [file, join(file, 'below')]) {
    await t.throwsAsync(downloadWeights(`${base}/good/${goodName}`, { cacheDir: dir }), {
      instanceOf: DownloadError,
      message: `Cannot use the cache folder '${dir}': a file is in the way of the folder`,
    });
  }
});

test('.partial files of killed downloaders are removed; a live one\'s is kept', async (t) => {
  const dir = cacheDir();
  // A pid that cannot be alive (above Linux's pid_max), one that is (ours), and a day-old file.
  const dead = join(dir, `${goodName}.4194999.0123456789ab.partial`);
  const live = join(dir, `${goodName}.${process.pid}.0123456789ab.partial`);
  const old = join(dir, `${goodName}.${process.pid}.ba9876543210.partial`);
  const fresh = join(dir, `${goodName}.4194998.0123456789ab.partial`); // dead writer, but written just now
  const other = join(dir, `other.pth.4194999.0123456789ab.partial`); // another file's: not ours to judge
  for (const f of [dead, live, old, fresh, other]) writeFileSync(f, 'partial');
  const minutesAgo = (m: number) => (Date.now() - m * 60_000) / 1000;
  utimesSync(dead, minutesAgo(10), minutesAgo(10));
  utimesSync(other, minutesAgo(10), minutesAgo(10));
  utimesSync(old, minutesAgo(25 * 60), minutesAgo(25 * 60));
  await downloadWeights(`${base}/good/${goodName}`, { cacheDir: dir, timeoutMs: 60_000 });
  t.deepEqual(onlyFile(dir), [goodName, live, fresh, other].map((f) => f.slice(f.lastIndexOf('/') + 1)).sort());
});

test('an abort signal stops the download and leaves nothing', async (t) => {
  const dir = cacheDir();
  const controller = new AbortController();
  const pending = downloadWeights(`${base}/slow/${goodName}?t=abort`, { cacheDir: dir, signal: controller.signal });
  setTimeout(() => controller.abort(), 80);
  await t.throwsAsync(pending, { instanceOf: DownloadError, message: /aborted/ });
  // The caller's promise rejects at once; the shared download notices the cancel a little later and
  // cleans up (how much later depends on the machine's load): wait for it, bounded by the test's
  // own timeout rather than by a clock.
  while (onlyFile(dir).length > 0) await sleep(20);
  t.deepEqual(onlyFile(dir), []);
});

test('concurrent calls in one process share one download; one caller aborting does not fail the other', async (t) => {
  const dir = cacheDir();
  const url = `${base}/slow/${goodName}?t=shared`;
  const controller = new AbortController();
  const results = Promise.allSettled([
    downloadWeights(url, { cacheDir: dir }),
    downloadWeights(url, { cacheDir: dir }),
    downloadWeights(url, { cacheDir: dir, signal: controller.signal }),
  ]);
  controller.abort();
  const [a, b, c] = await results;
  t.is(a.status, 'fulfilled');
  t.deepEqual(b, a);
  t.is(c.status, 'rejected');
  t.is(hits.get(`/slow/${goodName}?t=shared`), 1);
  t.deepEqual(onlyFile(dir), [goodName]);
  t.deepEqual(readFileSync(join(dir, goodName)), bytes);
});

test('two processes downloading the same file at once leave one intact file', async (t) => {
  const dir = cacheDir();
  const url = `${base}/together/${goodName}`;
  const module = pathToFileURL(join(root, 'lib/weights/download.ts')).href;
  const code = `import { downloadWeights } from ${JSON.stringify(module)};
console.log(await downloadWeights(process.env.URL, { cacheDir: process.env.DIR }));`;
  const child = promisify(execFile)(process.execPath, ['--import=tsx', '--input-type=module', '-e', code], {
    cwd: root,
    env: { ...process.env, URL: url, DIR: dir },
  });
  // The server answers neither request until both have arrived, so the two downloads overlap.
  const [mine, theirs] = await Promise.all([downloadWeights(url, { cacheDir: dir }), child]);
  t.is(theirs.stdout.trim(), mine);
  t.is(hits.get('/together/' + goodName), 2);
  t.deepEqual(onlyFile(dir), [goodName]);
  t.deepEqual(readFileSync(mine), bytes);
});

test('torchHubCheckpointsDir follows torch.hub: TORCH_HOME, XDG_CACHE_HOME, ~/.cache', async (t) => {
  t.is(torchHubCheckpointsDir({ TORCH_HOME: '/opt/torch', XDG_CACHE_HOME: '/x' }), '/opt/torch/hub/checkpoints');
  t.is(torchHubCheckpointsDir({ XDG_CACHE_HOME: '/x' }), '/x/torch/hub/checkpoints');
  t.is(torchHubCheckpointsDir({ HOME: '/home/u' }), '/home/u/.cache/torch/hub/checkpoints');
  t.is(torchHubCheckpointsDir({ HOME: '/home/u', TORCH_HOME: '~/t' }), '/home/u/t/hub/checkpoints');
  // The default cache folder comes from the environment of the call.
  const torchHome = mkdtempSync(join(work, 'torch-home-'));
  process.env.TORCH_HOME = torchHome;
  try {
    const path = await downloadWeights(`${base}/good/${goodName}`);
    t.is(path, join(torchHome, 'hub', 'checkpoints', goodName));
    t.deepEqual(readFileSync(path), bytes);
  } finally {
    delete process.env.TORCH_HOME;
  }
});

test('bad arguments are InvalidArgumentErrors', async (t) => {
  await t.throwsAsync(downloadWeights('ftp://example.com/a.pth'), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(downloadWeights(`${base}/good/x.pth`, { timeoutMs: 0 }), {
    instanceOf: InvalidArgumentError,
    message: 'Expected positive integer for timeoutMs but received 0 of type number',
  });
  await t.throwsAsync(downloadWeights(`${base}/good/x.pth`, { fileName: '../x.pth' }), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(downloadWeights(`${base}/good/x.pth`, { cachedir: '/tmp' } as never), {
    instanceOf: InvalidArgumentError,
    message: /Unknown option 'cachedir'/,
  });
});

test('registry: resnet50 DEFAULT is IMAGENET1K_V2 with torchvision 0.14 metadata', (t) => {
  const entry = weightsEntry('resnet50', 'DEFAULT');
  t.is(entry.name, 'IMAGENET1K_V2');
  t.is(entry.fileName, 'resnet50-11ad3fa6.pth');
  t.is(entry.url, 'https://download.pytorch.org/models/resnet50-11ad3fa6.pth');
  t.is(entry.numParams, 25_557_032);
  t.deepEqual(entry.metrics, { acc1: 80.858, acc5: 95.434 });
  t.is(entry.transforms.resizeSize, 232);
  t.is(entry.transforms.cropSize, 224);
  t.deepEqual(entry.transforms.mean, [0.485, 0.456, 0.406]);
  t.deepEqual(entry.transforms.std, [0.229, 0.224, 0.225]);
  t.is(entry.transforms.interpolation, 'bilinear');
  t.is(entry.gflops.toFixed(2), '4.09');
  t.is(entry.fileSize, null);
  t.is(entry.numClasses, 1000);
  t.is(weightsEntry('resnet50', 'IMAGENET1K_V2'), entry);
  t.true(Object.isFrozen(entry.transforms.mean));
});

test('registry: resnet18 has only IMAGENET1K_V1, resized to 256', (t) => {
  t.deepEqual(weightsNames('resnet18'), ['IMAGENET1K_V1', 'DEFAULT']);
  const entry = weightsEntry('resnet18', 'DEFAULT');
  t.is(entry.name, 'IMAGENET1K_V1');
  t.is(entry.fileName, 'resnet18-f37072fd.pth');
  t.is(entry.transforms.resizeSize, 256);
  t.is(entry.gflops.toFixed(2), '1.81');
});

test('registry: 1000 ImageNet categories as torchvision 0.14 names them', (t) => {
  const categories = imagenetCategories();
  t.is(categories.length, 1000);
  t.is(categories[0], 'tench');
  t.is(categories[281], 'tabby'); // torchvision's _IMAGENET_CATEGORIES[281] is 'tabby', not 'tabby cat'
  t.is(categories[999], 'toilet tissue');
});

test('registry: unknown names list the available ones', (t) => {
  t.throws(() => weightsEntry('resnet50', 'FOO'), {
    instanceOf: InvalidArgumentError,
    message: "Expected one of 'IMAGENET1K_V1', 'IMAGENET1K_V2', 'DEFAULT' for weights of resnet50 but received 'FOO' of type string",
  });
  t.throws(() => weightsEntry('resnet51', 'DEFAULT'), { instanceOf: InvalidArgumentError, message: /for arch but received 'resnet51'/ });
});

test('a builder\'s and load()\'s signal reach the download: aborted, nothing is fetched or cached', async (t) => {
  const { resnet20 } = await import('../lib/builders.ts');
  const dir = cacheDir();
  const url = `${base}/good/${goodName}?t=builder-abort`;
  const controller = new AbortController();
  controller.abort(new Error('user cancelled'));
  const error = await t.throwsAsync(resnet20({ weights: url, signal: controller.signal, seed: 0 }), { instanceOf: DownloadError, message: /aborted/ });
  t.is((error.cause as Error).message, 'user cancelled');
  const model = await resnet20({ seed: 0 });
  t.teardown(() => model.dispose());
  await t.throwsAsync(model.load(url, { cacheDir: dir, signal: controller.signal }), { instanceOf: DownloadError, message: /aborted/ });
  t.is(hits.get(`/good/${goodName}?t=builder-abort`) ?? 0, 0);
  t.deepEqual(onlyFile(dir), []);
});
