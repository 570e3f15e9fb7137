// Kept for older command lines: the forward benchmark is now bench/inference.ts (ours beside
// onnxruntime-node and Python PyTorch eager / optimized, same weights, outputs checked first).
// Same options, e.g.  node --import=tsx bench/forward.ts --arch resnet50 --batches 1,8
await import('./inference.ts');
