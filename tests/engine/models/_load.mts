import ort from 'onnxruntime-node';
const path = process.argv[2]!;
for (const level of (process.argv[3] ?? 'disabled,basic,extended,all').split(',') as ('disabled' | 'basic' | 'extended' | 'all')[]) {
  const t0 = performance.now();
  const s = await ort.InferenceSession.create(path, { graphOptimizationLevel: level, intraOpNumThreads: 2 });
  console.log(level, ((performance.now() - t0) / 1000).toFixed(1), 's');
  await s.release();
}
