// ONNX Runtime's profile (SessionOptions.enableProfiling: a JSON array of Chrome trace events) summed up per run, for
// bench/gpu/engine-diagnose.ts. Event shapes as ONNX Runtime 1.30 writes them: "Session" model_run events (one per
// run); "Node" events named <node>_kernel_time with args.op_name and args.provider (dur: the CPU-side time of the
// kernel's Compute in µs; on webgpu that is recording and dispatching, not the GPU's work); and, from the WebGPU EP
// when the device has timestamp queries, "Api" events named <node>&<op type>&<shader program> with args.cache_key
// (dur: GPU time in µs, core/providers/webgpu/webgpu_context.cc CollectProfilingData).

export interface ProfileEvent { cat?: string; name?: string; dur?: number; args?: Record<string, unknown> }

export interface TimeRow { name: string; msPerRun: number; perRun: number }

export interface ProfileSummary {
  runs: number;
  /** ONNX Runtime's name of the provider asked for, e.g. WebGpuExecutionProvider. */
  requestedProvider: string;
  /** Distinct nodes that ran, per provider. */
  nodesByProvider: Record<string, number>;
  /** Op types (node counts) of the nodes placed on another provider than the requested one: fallbacks. */
  offProviderOps: Record<string, number>;
  /** Their CPU-side kernel time, ms per run. */
  offProviderMsPerRun: number;
  /** MemcpyToHost / MemcpyFromHost nodes: the copies ONNX Runtime put around fallbacks. */
  memcpyNodes: number;
  cpuSideMsPerRun: number;
  opsByCpuSideTime: TimeRow[];
  /** WebGPU timestamped kernels, all runs together (0: the profile has no GPU times). */
  gpuEvents: number;
  gpuMsPerRun: number | null;
  opsByGpuTime: TimeRow[];
  programsByGpuTime: TimeRow[];
}

/**
 * An ONNX Runtime profile (Chrome trace events) in numbers per run: nodes per provider from the "Node" kernel_time
 * events (args.provider, args.op_name), the op types placed off `requested`, op types by CPU-side kernel time, and,
 * when the WebGPU EP wrote GPU timestamps ("Api" events named node&opType&program, dur in µs), op types and programs
 * by GPU time.
 */
export function summarizeProfile(events: ProfileEvent[], requested: string): ProfileSummary {
  const runs = Math.max(1, events.filter((e) => e.cat === 'Session' && e.name === 'model_run').length);
  const epName = { cpu: 'CPUExecutionProvider', webgpu: 'WebGpuExecutionProvider', cuda: 'CUDAExecutionProvider', tensorrt: 'TensorrtExecutionProvider' }[requested] ?? requested;
  const nodeProvider = new Map<string, string>();
  const nodeOp = new Map<string, string>();
  const cpuByOp = new Map<string, { us: number; n: number }>();
  const usByNode = new Map<string, number>();
  const add = (m: Map<string, { us: number; n: number }>, k: string, us: number): void => {
    const e = m.get(k) ?? { us: 0, n: 0 };
    e.us += us;
    e.n++;
    m.set(k, e);
  };
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time')) continue;
    const node = e.name.slice(0, -'_kernel_time'.length);
    const op = String(e.args?.op_name ?? '?');
    nodeProvider.set(node, String(e.args?.provider ?? '?'));
    nodeOp.set(node, op);
    add(cpuByOp, op, e.dur ?? 0);
    usByNode.set(node, (usByNode.get(node) ?? 0) + (e.dur ?? 0));
  }
  const nodesByProvider: Record<string, number> = {};
  const offProviderOps: Record<string, number> = {};
  for (const [node, p] of nodeProvider) {
    nodesByProvider[p] = (nodesByProvider[p] ?? 0) + 1;
    if (p !== epName) offProviderOps[nodeOp.get(node)!] = (offProviderOps[nodeOp.get(node)!] ?? 0) + 1;
  }
  // the kernel time of the nodes placed off the requested provider (their copies are MemcpyToHost/FromHost nodes)
  const offProviderMsPerRun = [...nodeProvider].filter(([, p]) => p !== epName).reduce((s, [node]) => s + usByNode.get(node)!, 0) / 1000 / runs;
  const gpuByOp = new Map<string, { us: number; n: number }>();
  const gpuByProgram = new Map<string, { us: number; n: number }>();
  let gpuEvents = 0;
  for (const e of events) {
    if (e.args?.cache_key === undefined || !e.name) continue; // the WebGPU EP's timestamped kernels (cat "Api")
    gpuEvents++;
    const [node, op, program] = e.name.split('&');
    add(gpuByOp, op ?? nodeOp.get(node!) ?? '?', e.dur ?? 0);
    add(gpuByProgram, program ?? '?', e.dur ?? 0);
  }
  const top = (m: Map<string, { us: number; n: number }>, k: number): TimeRow[] =>
    [...m].sort((a, b) => b[1].us - a[1].us).slice(0, k).map(([name, v]) => ({ name, msPerRun: v.us / 1000 / runs, perRun: v.n / runs }));
  const total = (m: Map<string, { us: number; n: number }>): number => [...m.values()].reduce((s, v) => s + v.us, 0) / 1000 / runs;
  return {
    runs, requestedProvider: epName, nodesByProvider, offProviderOps, offProviderMsPerRun,
    memcpyNodes: [...nodeOp.values()].filter((op) => op.startsWith('Memcpy')).length,
    cpuSideMsPerRun: total(cpuByOp), opsByCpuSideTime: top(cpuByOp, 15),
    gpuEvents, gpuMsPerRun: gpuEvents ? total(gpuByOp) : null, opsByGpuTime: top(gpuByOp, 15), programsByGpuTime: top(gpuByProgram, 10),
  };
}
