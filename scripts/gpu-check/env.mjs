// Loads the staged package and the freshly built addon, and says what it found.
//   node env.mjs --pkg DIR --device cuda|cpu --out FILE.json
// Exit 1 when the device is CUDA and the addon cannot use it (not compiled with CUDA, or no GPU).
import { writeFileSync } from 'node:fs';
import { gpuName, loadPackage, parseArgs } from './common.mjs';

const args = parseArgs();
const device = args.device ?? 'cuda';
const env = { node: process.version, device };
let ok = true;
try {
  const pkg = await loadPackage(args.pkg);
  Object.assign(env, {
    libtorch: pkg.runtime.libtorchVersion(),
    cudaCompiled: pkg.native.cudaCompiled?.() ?? null,
    cudaAvailable: pkg.runtime.cudaAvailable(),
    cudaDeviceCount: pkg.runtime.cudaDeviceCount(),
    threads: pkg.runtime.getNumThreads(),
  });
  if (device.startsWith('cuda')) {
    env.gpu = gpuName();
    ok = env.cudaCompiled === true && env.cudaAvailable && env.cudaDeviceCount > 0;
    if (!ok) env.error = env.cudaCompiled ? 'the addon has CUDA but torch::cuda::is_available() is false' : 'the addon was built without CUDA (RESNET_WITH_CUDA off)';
  }
} catch (error) {
  ok = false;
  env.error = String(error?.stack ?? error).split('\n').slice(0, 6).join('\n');
}
writeFileSync(args.out, JSON.stringify(env, null, 1));
console.log(`env: ${JSON.stringify(env)}`);
process.exitCode = ok ? 0 : 1;
