"""The table at the end of `bench/gpu.sh --diagnose`: diffusers_step.py --diagnose's JSON line next to the JSON lines
of bench/gpu/engine-diagnose.ts. Missing parts (a half that failed or ran out of time) print as '-'.

Usage: python bench/gpu/diagnose_table.py DIFFUSERS_JSON DIAGNOSE_JSONL
"""
import json, os, sys


def last_json(path):
    if not os.path.exists(path):
        return {}
    lines = [l for l in open(path).read().splitlines() if l.startswith('{')]
    return json.loads(lines[-1]) if lines else {}


def records(path):
    if not os.path.exists(path):
        return []
    out = []
    for l in open(path).read().splitlines():
        try:
            out.append(json.loads(l))
        except ValueError:
            pass  # a line cut by the time limit
    return out


def fmt(v, f='{:.4f}'):
    return '-' if v is None else f.format(v)


def ratio(a, b):
    return fmt(a / b if a and b else None, '{:.2f}')


def main():
    d, recs = last_json(sys.argv[1]), records(sys.argv[2])
    pick = lambda diag, **kw: next((r for r in recs if r.get('diag') == diag and all(r.get(k) == v for k, v in kw.items())), {})
    env = pick('env')
    print()
    print(f"device: {d.get('device')}  torch {d.get('torch')} ({d.get('attention')})  onnxruntime {env.get('ortVersion')} ({env.get('provider')})  repeats {env.get('repeats')}")
    print(f"\n{'s per CFG step (batch 2), fp16, median':44}{'ours':>10}{'diffusers':>11}{'ours/diff':>11}")
    for part, key, label in [('controlnet+unet', 'step_s_median', 'ControlNet + UNet'), ('controlnet', 'cn_step_s_median', 'ControlNet alone'),
                             ('unet', 'unet_step_s_median', 'UNet alone')]:
        o = pick('time', part=part).get('stepSMedian')
        print(f"{label:44}{fmt(o):>10}{fmt(d.get(key)):>11}{ratio(o, d.get(key)):>11}")
    print(f"\n{'rel. L2 vs diffusers fp32':44}{'ours fp16':>10}{'diff. fp16':>11}")
    for part, key, label in [('controlnet+unet', 'fp16_vs_fp32_rel_l2', 'ControlNet + UNet (output)'),
                             ('controlnet', 'cn_fp16_vs_fp32_rel_l2', 'ControlNet alone (all residuals)'),
                             ('unet', 'unet_fp16_vs_fp32_rel_l2', 'UNet alone (fed fp32 residuals)')]:
        print(f"{label:44}{fmt(pick('precision', part=part).get('relL2VsDiffusersFp32'), '{:.2e}'):>10}{fmt(d.get(key), '{:.2e}'):>11}")
    for b in [r for r in recs if r.get('diag') == 'build']:
        print(f"build / load, {b['network']} fp16: {b['buildS']:.1f} / {b['loadS']:.1f} s")
    first = pick('time', part='controlnet+unet').get('firstStepS')
    print(f"first step (shader compile): {fmt(first, '{:.2f}')} s")

    for p in [r for r in recs if r.get('diag') == 'profile']:
        print(f"\nprofile {p.get('network', '?')}: ", end='')
        if 'error' in p:
            print(p['error'])
            continue
        print(f"{p['runs']} runs; nodes per provider {p['nodesByProvider']}; Memcpy nodes {p['memcpyNodes']}")
        if p['offProviderOps']:
            print(f"  off {p['requestedProvider']}: {p['offProviderOps']} ({p['offProviderMsPerRun']:.2f} ms/run of kernel time)")
        gpu = p.get('gpuMsPerRun')
        print(f"  per run: GPU time {fmt(gpu, '{:.2f}')} ms ({p['gpuEvents']} timestamped kernels in all), CPU-side kernel time {p['cpuSideMsPerRun']:.2f} ms")
        # with GPU times, the CPU-side list (time to record and dispatch) is shortened to keep the table readable
        lists = [('op type by GPU time', p['opsByGpuTime'], gpu, 15), ('shader program by GPU time', p['programsByGpuTime'], gpu, 10)] if gpu else []
        lists.append(('op type by CPU-side kernel time', p['opsByCpuSideTime'], p['cpuSideMsPerRun'], 8 if gpu else 15))
        for title, rows, tot, n in lists:
            print(f"  {title:40}{'ms/run':>9}{'%':>6}{'kernels/run':>13}")
            for r in rows[:n]:
                print(f"    {r['name'][:38]:38}{r['msPerRun']:>9.2f}{100 * r['msPerRun'] / tot if tot else 0:>6.1f}{r['perRun']:>13.0f}")

    sv = [r for r in recs if r.get('diag') == 'session-variant']
    if sv:
        base = pick('time', part='unet').get('stepSMedian')
        print(f"\n{'UNet alone fp16, WebGPU EP setting':36}{'s/step':>9}{'vs default':>11}{'rel L2':>10}{'load s':>8}{'first s':>9}")
        print(f"{'default settings':36}{fmt(base):>9}{'1.00':>11}{fmt(pick('precision', part='unet').get('relL2VsDiffusersFp32'), '{:.2e}'):>10}")
        for v in sv:
            if 'error' in v:
                print(f"{v['name']:36} failed: {v['error'][:200]}")
                continue
            label = v['name'] + ('' if v.get('applied') else ' (not applied: cpu)')
            print(f"{label:36}{v['stepSMedian']:>9.4f}{ratio(v['stepSMedian'], base):>11}{v['relL2VsDiffusersFp32']:>10.2e}{v['loadS']:>8.1f}{v['firstS']:>9.2f}")
            print(f"  {v.get('about', '')}")
    print(f"\n{'UNet alone, fp16 + fp32 islands':36}{'rel L2 vs diff. fp32':>21}{'s/step':>9}{'build s':>9}{'load s':>8}")
    for v in [r for r in recs if r.get('diag') == 'variant']:
        label = {'fp16': 'fp16 (no extra islands)', 'fp32': 'fp32 graph', 'all': '+ all four families in fp32'}.get(v['name'], f"+ {v['name']} in fp32")
        print(f"{label:36}{v['relL2VsDiffusersFp32']:>21.2e}{v['stepSMedian']:>9.4f}{v['buildS']:>9.1f}{v['loadS']:>8.1f}")
    print(f"{'diffusers fp16 (same feeds)':36}{fmt(d.get('unet_fp16_vs_fp32_rel_l2'), '{:.2e}'):>21}{fmt(d.get('unet_step_s_median')):>9}")
    for s in [r for r in recs if r.get('diag') == 'skipped']:
        print(f"skipped {s['name']}: {s['reason']}")
    done = pick('done')
    print(f"our half: {'done in ' + fmt(done.get('totalS'), '{:.0f}') + ' s' if done else 'did not finish (see the lines above)'}")


if __name__ == '__main__':
    main()
