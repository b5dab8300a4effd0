// The `controlnet` command: serve, worker, generate, hint, models (list, pull), keys (create, list, revoke).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomInt } from 'node:crypto';
import { Command, Option } from 'commander';
import pino from 'pino';
import { ConfigError, loadConfig, type Config } from '../config.ts';
import { createApp } from '../api/app.ts';
import { fetchOptions, wire } from '../main/wire.ts';
import { KeyRuleError, KeyStore, MIN_KEY_LENGTH } from '../api/keys.ts';
import { formatBytes, modelsReport } from './models-report.ts';
import { parseRequest, ValidationError, CONTROLNET_ENDPOINT } from '../request/schema.ts';
import { openDb } from '../jobs/db.ts';
import { MODEL_KINDS, type ModelKind } from '../engine/store.ts';
import type { ControlNetType } from '../engine/pipeline/types.ts';
import { ModelDownloader } from '../storage/model-download.ts';
import { annotatorStatus } from '../engine/annotators/models.ts';
import { annotatorPullTypes, pullAnnotators } from '../storage/annotator-pull.ts';
import { ModelsFolder } from '../storage/models-folder.ts';
import { DEFAULT_CONTROLNET_REPOS, NAMED_MODELS } from '../storage/default-models.ts';
import { loadImage } from '../inputs/image.ts';
import { engineOptions } from '../worker/engine-options.ts';

// The engine and the demo models load ONNX and weight code: only the commands that run them import it.
const engineFactory = async (cfg: Config) => (await import('../worker/engine-factory.ts')).engineFactory(cfg);
const ensureDemoModel = async (cfg: Config, log: (m: string) => void) => (await import('./demo-model.ts')).ensureDemoModel(cfg, log);

const say = (s: string) => process.stdout.write(`${s}\n`);
const fail = (s: string): never => {
  process.stderr.write(`error: ${s}\n`);
  process.exit(1);
};

function config(o: { dataDir?: string; port?: string; host?: string }): Config {
  const env = { ...process.env };
  if (o.port !== undefined) env.PORT = o.port;
  if (o.host !== undefined) env.HOST = o.host;
  return loadConfig(env, o.dataDir ? { dataDir: o.dataDir } : {});
}

const program = new Command('controlnet').description('Self-hosted ControlNet image API server');
const dataDirOpt = () => new Option('--data-dir <dir>', 'data folder (db, outputs, models); default $DATA_DIR or ./data');

/** Stops gracefully on SIGTERM/SIGINT: no new jobs, the running one handed back to the queue, the pool left. */
function onSignals(log: pino.Logger, close: () => Promise<void>): void {
  const stop = async (signal: string) => {
    log.info({ signal }, 'stopping: handing back the running job and leaving the pool');
    await close().catch((e: Error) => log.error({ err: e.message }, 'error while stopping'));
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

program.command('serve').description('run the API server and a job worker (REDIS_URL set: as a member of the pool)')
  .addOption(dataDirOpt()).option('--port <port>', 'port (default $PORT or 8080)').option('--host <host>', 'host (default $HOST or 127.0.0.1)')
  .option('--no-worker', 'run no jobs in this process (a `controlnet worker` process on the same DATA_DIR or pool does)')
  .action(async (o) => {
    let cfg = config(o);
    const log = pino({ level: cfg.logLevel });
    cfg = await ensureDemoModel(cfg, (m) => log.info(m));
    const app = await createApp(cfg, { engine: o.worker === false ? undefined : await engineFactory(cfg), logger: log });
    if (app.ctx.keys.count() === 0) {
      const { key } = app.ctx.keys.create({ admin: true, label: 'first start' });
      say(`no API key existed: created admin key ${key} (shown once; set CONTROLNET_API_KEY or run "controlnet keys create")`);
    }
    const url = await app.listen();
    log.info({ url, server_id: app.ctx.serverId, pool: Boolean(cfg.redisUrl), default_model_id: app.ctx.defaultModelId() ?? null }, 'serving');
    onSignals(log, () => app.close());
  });

program.command('worker').description('run only a job worker on the DATA_DIR queue (next to `serve --no-worker`), or in the pool (REDIS_URL)')
  .addOption(dataDirOpt())
  .action(async (o) => {
    const cfg = config(o);
    const log = pino({ level: cfg.logLevel });
    const w = await wire(cfg, { engine: await engineFactory(cfg), logger: log, http: false });
    log.info({ worker: w.worker()?.name }, 'worker running');
    onSignals(log, () => w.close());
  });

/** Raw base64 as the API takes it (long, base64 letters only): never mistaken for a file name. */
const looksBase64 = (v: string) => v.length >= 64 && /^[A-Za-z0-9+/=\s]+$/.test(v);

/** A local file becomes a data URL; URLs, data URLs and base64 pass through; anything else is "file not found". */
async function imageArg(v: string | undefined, flag = 'image'): Promise<string | undefined> {
  if (!v) return undefined;
  if (/^(https?:|data:)/i.test(v)) return v;
  if (existsSync(v)) return `data:application/octet-stream;base64,${(await readFile(v)).toString('base64')}`;
  if (looksBase64(v)) return v;
  return fail(`${flag}: file not found: ${v}`);
}

/** Where the CLI writes images unless -o says otherwise: inside DATA_DIR (ignored by git), never the checkout itself. */
const outDir = (cfg: Config, o: { out?: string }, sub: string) => resolve(o.out ?? join(cfg.dataDir, 'cli-outputs', sub));

program.command('generate').description('run one request from the command line and write PNGs')
  .addOption(dataDirOpt())
  .option('--json <body>', 'a request body as JSON (the API\'s field names); flags below override it')
  .option('-c, --controlnet <types>', 'controlnet_model, e.g. canny or canny,depth')
  .option('-p, --prompt <text>').option('-n, --negative-prompt <text>')
  .option('-i, --init-image <file|url>').option('--control-image <file|url>').option('--mask-image <file|url>')
  .option('-m, --model <id>', 'model_id').option('-W, --width <n>').option('-H, --height <n>').option('-s, --steps <n>')
  .option('--samples <n>').option('--seed <n>').option('--scheduler <name>').option('--guidance <n>').option('--strength <n>')
  .option('--auto-hint', 'auto_hint yes').option('-o, --out <dir>', 'output folder (default: <data dir>/cli-outputs/generate)')
  .action(async (o) => {
    const cfg = config(o);
    const body: Record<string, unknown> = o.json ? JSON.parse(o.json as string) : {};
    const set = (k: string, v: unknown) => { if (v !== undefined) body[k] = v; };
    set('controlnet_model', o.controlnet); set('prompt', o.prompt); set('negative_prompt', o.negativePrompt);
    set('init_image', await imageArg(o.initImage, '--init-image')); set('control_image', await imageArg(o.controlImage, '--control-image'));
    set('mask_image', await imageArg(o.maskImage, '--mask-image'));
    set('model_id', o.model); set('width', o.width); set('height', o.height); set('num_inference_steps', o.steps); set('samples', o.samples);
    set('seed', o.seed); set('scheduler', o.scheduler); set('guidance_scale', o.guidance); set('strength', o.strength);
    if (o.autoHint) body.auto_hint = 'yes';
    let r;
    try {
      r = parseRequest(body);
    } catch (e) {
      if (e instanceof ValidationError) fail(e.message);
      throw e;
    }
    const models = new ModelsFolder(cfg.modelsDir);
    r.model_id ??= cfg.defaultModelId ?? models.firstInstalled('base') ?? fail('no base model installed; pass --model');
    r.seed ??= randomInt(0, 2 ** 32 - 1);
    const opts = await engineOptions(r, { maxBytes: cfg.maxInputBytes, maxPixels: cfg.maxInputPixels, fetch: fetchOptions(cfg) })
      .catch((e: Error) => fail(e.message));
    const engine = await (await engineFactory(cfg))();
    try {
      const res = await engine.generate(opts, { onProgress: (p) => process.stderr.write(`\rstep ${p.step}/${p.totalSteps}`) });
      process.stderr.write('\n');
      const out = outDir(cfg, o, 'generate');
      await mkdir(out, { recursive: true });
      for (let i = 0; i < res.images.length; i++) {
        const f = join(out, `${r.seed}-${i}.png`);
        await writeFile(f, res.images[i]!);
        say(f);
      }
      say(JSON.stringify({ seed: r.seed, seconds: res.seconds, nsfw: res.nsfw, applied: res.applied }));
    } catch (e) {
      await engine.close();
      fail((e as Error).message);
    } finally {
      await engine.close();
    }
  });

program.command('hint').description('write the hint maps auto_hint would compute (canny edges, depth, pose, ...) as PNGs')
  .addOption(dataDirOpt())
  .requiredOption('-c, --controlnet <types>', 'control types, e.g. canny or canny,depth,openpose')
  .requiredOption('-i, --image <file|url>', 'the input image').option('--mask-image <file|url>', 'mask (inpaint preview)')
  .option('-W, --width <n>', 'width', '512').option('-H, --height <n>', 'height', '512').option('--seed <n>', 'seed (shuffle)', '0')
  .option('-o, --out <dir>', 'output folder (default: <data dir>/cli-outputs/hint)')
  .action(async (o) => {
    const cfg = config(o);
    let r;
    try {
      r = parseRequest({ controlnet_model: o.controlnet, init_image: await imageArg(o.image, '--image'), mask_image: await imageArg(o.maskImage, '--mask-image'),
        width: o.width, height: o.height, seed: o.seed }, CONTROLNET_ENDPOINT, { denoising: false });
    } catch (e) {
      if (e instanceof ValidationError) fail(e.message);
      throw e;
    }
    const limits = { maxBytes: cfg.maxInputBytes, maxPixels: cfg.maxInputPixels, fetch: fetchOptions(cfg) };
    const image = await loadImage('image', r.init_image!, r.width, r.height, limits).catch((e: Error) => fail(e.message));
    const mask = r.mask_image ? await loadImage('mask_image', r.mask_image, r.width, r.height, limits).catch((e: Error) => fail(e.message)) : undefined;
    const engine = await (await engineFactory(cfg))();
    try {
      const pngs = await engine.hint({ types: r.controlnet_model, image, mask, width: r.width, height: r.height, seed: r.seed ?? 0 });
      const out = outDir(cfg, o, 'hint');
      await mkdir(out, { recursive: true });
      for (const [i, png] of pngs.entries()) {
        const f = join(out, `hint-${r.controlnet_model[i]}.png`);
        await writeFile(f, png);
        say(f);
      }
    } catch (e) {
      fail((e as Error).message);
    } finally {
      await engine.close();
    }
  });

const models = program.command('models').description('the models folder');
models.command('list').description('the installed models: kind, id, size, and whether the weights are a demo\'s or real')
  .addOption(dataDirOpt()).option('--json', 'as JSON')
  .action(async (o) => {
    const cfg = config(o);
    const list = await modelsReport(new ModelsFolder(cfg.modelsDir));
    if (o.json) {
      say(JSON.stringify(list, null, 2));
      return;
    }
    say(table(['KIND', 'ID', 'SIZE', 'WEIGHTS'], list.map((m) => [m.kind, m.id, formatBytes(m.bytes), m.demo ? `demo (${m.demoNote})` : 'real'])));
    if (list.length === 0) say('(no models installed: "controlnet serve" installs the demo model; "controlnet models pull <type or repo>" gets real ones)');
  });
models.command('annotators').description('per control type: what auto_hint runs with, and which annotator files are missing').addOption(dataDirOpt())
  .action((o) => {
    for (const s of annotatorStatus(config(o).modelsDir)) {
      say(`${s.type}\t${s.state}\t${s.uses.join(', ') || '-'}${s.missing.length ? `\tmissing: ${s.missing.join(', ')} (${s.howToGet})` : ''}`);
    }
  });
models.command('pull').description(`download a model: a ControlNet type (canny, depth, ...), a named extra (${Object.keys(NAMED_MODELS).filter((k) => !k.startsWith('opus-mt-')).join(', ')}, the opus-mt-<src>-en translators), a hub repo id, a URL, or "annotators" / "annotator:<type>,..." (the auto_hint annotator files)`)
  .argument('<source>').addOption(dataDirOpt())
  .addOption(new Option('--kind <kind>', 'model kind').choices([...MODEL_KINDS]))
  .option('--id <id>', 'model id in the folder (default: the type, or the repo / file name)').option('--sha256 <hex>')
  .action(async (source: string, o) => {
    const cfg = config(o);
    const annotatorTypes = annotatorPullTypes(source);
    if (annotatorTypes) {
      // `models pull annotators` / `annotator:<type>,...`: the annotator files auto_hint reads
      const dl = new ModelDownloader(new ModelsFolder(cfg.modelsDir), { hfEndpoint: cfg.hfEndpoint, fetch: fetchOptions(cfg) });
      const files = await pullAnnotators(dl, cfg.modelsDir, annotatorTypes, (f) => say(`${f.dest} from ${f.repo}/${f.path} (licence: ${f.licence})`));
      for (const f of files) say(`${f.dest}\t${f.bytes ? `${f.bytes} bytes` : 'already installed'}`);
      return;
    }
      const type = source in DEFAULT_CONTROLNET_REPOS ? (source as ControlNetType) : undefined;
    const named = Object.hasOwn(NAMED_MODELS, source) ? NAMED_MODELS[source]! : undefined;
    const src = type ? DEFAULT_CONTROLNET_REPOS[type] : named ? named.source : source;
    const kind = (o.kind as ModelKind | undefined) ?? (type ? 'controlnet' : named ? named.kind : 'base');
    const id = (o.id as string | undefined) ?? type ?? (named ? named.id ?? source : undefined) ?? src.split('/').pop()!.replace(/\.(safetensors|ckpt|bin|pt|pth)$/i, '');
    const dl = new ModelDownloader(new ModelsFolder(cfg.modelsDir), { hfEndpoint: cfg.hfEndpoint, fetch: fetchOptions(cfg) });
    const p = dl.start({ kind, id, source: src, sha256: o.sha256 as string | undefined, skip: named?.skip });
    const tick = setInterval(() => {
      const s = dl.get(kind, id);
      if (s) process.stderr.write(`\r${s.bytes} / ${s.totalBytes ?? '?'} bytes`);
    }, 500);
    const st = await p;
    clearInterval(tick);
    process.stderr.write('\n');
    if (st.status !== 'done') fail(st.error ?? 'download failed');
    say(`${kind}/${id} installed (${st.bytes} bytes)`);
  });

const keys = program.command('keys').description('API keys');
keys.command('create').description('create a key and print it (shown once)').option('--admin', 'may use the enterprise endpoints')
  .option('--label <text>').addOption(dataDirOpt())
  .action((o) => {
    const cfg = config(o);
    const db = openDb(cfg.dataDir);
    const { key } = new KeyStore(db).create({ admin: Boolean(o.admin), label: o.label as string | undefined });
    db.close();
    say(key);
  });
keys.command('list').description('every key: id, admin or not, label, created, revoked (secrets are stored hashed, so not shown)')
  .addOption(dataDirOpt())
  .action((o) => {
    const cfg = config(o);
    const db = openDb(cfg.dataDir);
    const list = new KeyStore(db).list();
    db.close();
    say(table(['ID', 'ADMIN', 'LABEL', 'CREATED (UTC)', 'STATE'], list.map((k) => [String(k.id), k.admin ? 'admin' : '', k.label ?? '',
      new Date(k.createdAt).toISOString().replace('T', ' ').slice(0, 19), k.revoked ? 'revoked' : 'active'])));
    if (list.length === 0) say('(no keys: "controlnet keys create" makes one)');
  });
keys.command('revoke').description('revoke a key by its id (see "keys list"); it stops working at once')
  .argument('<id>').addOption(dataDirOpt())
  .action(async (id: string, o) => {
    if (!/^\d+$/.test(id)) fail(`key id must be a number (see "controlnet keys list"), got "${id}"`);
    const cfg = config(o);
    const db = openDb(cfg.dataDir);
    const store = new KeyStore(db);
    const done = store.revoke(Number(id));
    const hash = store.hashOf(Number(id));
    db.close();
    if (!done) fail(`no active key with id ${id}`);
    if (cfg.redisUrl && hash) {
      // In a pool the key works on every server: withdraw it from the pool's shared key set too.
      const { withdrawPoolKey } = await import('../cluster/pool.ts');
      await withdrawPoolKey(cfg.redisUrl, hash);
      say(`key ${id} revoked on this server and withdrawn from the pool`);
      return;
    }
    say(`key ${id} revoked`);
  });

/** Left-aligned columns, two spaces apart. */
function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // A rule the user broke is one line; anything else is a bug and keeps its stack.
  if (e instanceof KeyRuleError) fail(`${e.message}; API keys are at least ${MIN_KEY_LENGTH} characters ("controlnet keys create" makes a 256-bit one)`);
  if (e instanceof ConfigError) fail(e.message);
  throw e;
}
