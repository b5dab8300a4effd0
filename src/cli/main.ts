// The `controlnet` command: serve, worker, generate, models (list, pull), keys (create).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomInt } from 'node:crypto';
import { Command, Option } from 'commander';
import pino from 'pino';
import { loadConfig, type Config } from '../config.ts';
import { createApp, fetchOptions, openStores } from '../api/app.ts';
import { KeyStore } from '../api/keys.ts';
import { parseRequest, ValidationError } from '../request/schema.ts';
import { openDb } from '../jobs/db.ts';
import { MODEL_KINDS, type ModelKind } from '../engine/store.ts';
import type { ControlNetType } from '../engine/pipeline/types.ts';
import { ModelDownloader } from '../storage/model-download.ts';
import { ModelsFolder } from '../storage/models-folder.ts';
import { DEFAULT_CONTROLNET_REPOS, NAMED_MODELS } from '../storage/default-models.ts';
import { WebhookSender } from '../worker/webhooks.ts';
import { JobWorker } from '../worker/worker.ts';
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

program.command('serve').description('run the API server and a job worker')
  .addOption(dataDirOpt()).option('--port <port>', 'port (default $PORT or 8080)').option('--host <host>', 'host (default $HOST or 127.0.0.1)')
  .option('--no-worker', 'run no jobs in this process (a `controlnet worker` process on the same DATA_DIR does)')
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
    log.info({ url, default_model_id: app.ctx.defaultModelId() ?? null }, 'serving');
    const stop = async () => { await app.close(); process.exit(0); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

program.command('worker').description('run only a job worker on the DATA_DIR queue (next to a server)')
  .addOption(dataDirOpt())
  .action(async (o) => {
    const cfg = config(o);
    const log = pino({ level: cfg.logLevel });
    const { db, queue, store } = openStores(cfg);
    await store.init();
    const r = queue.recoverRunning();
    if (r.requeued || r.failed) log.info(r, 'recovered jobs left running by a previous process');
    const fetch = fetchOptions(cfg);
    const webhooks = new WebhookSender(db, { secret: cfg.webhookSecret, maxAttempts: cfg.webhookMaxAttempts, baseDelayMs: cfg.webhookBaseDelayMs, fetch });
    webhooks.start();
    const engine = await (await engineFactory(cfg))();
    const worker = new JobWorker({ queue, engine, store, webhooks, log, limits: { maxBytes: cfg.maxInputBytes, maxPixels: cfg.maxInputPixels, fetch },
      tempLinkTtlMs: cfg.tempLinkTtlMs });
    worker.start();
    log.info({ worker: worker.name }, 'worker running');
    const stop = async () => { await worker.stop(true); webhooks.stop(); await engine.close(); db.close(); process.exit(0); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

/** A local file becomes a data URL; URLs and base64 pass through. */
async function imageArg(v: string | undefined): Promise<string | undefined> {
  if (!v) return undefined;
  if (/^(https?:|data:)/i.test(v) || !existsSync(v)) return v;
  return `data:application/octet-stream;base64,${(await readFile(v)).toString('base64')}`;
}

program.command('generate').description('run one request from the command line and write PNGs')
  .addOption(dataDirOpt())
  .option('--json <body>', 'a request body as JSON (the API\'s field names); flags below override it')
  .option('-c, --controlnet <types>', 'controlnet_model, e.g. canny or canny,depth')
  .option('-p, --prompt <text>').option('-n, --negative-prompt <text>')
  .option('-i, --init-image <file|url>').option('--control-image <file|url>').option('--mask-image <file|url>')
  .option('-m, --model <id>', 'model_id').option('-W, --width <n>').option('-H, --height <n>').option('-s, --steps <n>')
  .option('--samples <n>').option('--seed <n>').option('--scheduler <name>').option('--guidance <n>').option('--strength <n>')
  .option('--auto-hint', 'auto_hint yes').option('-o, --out <dir>', 'output folder', 'outputs')
  .action(async (o) => {
    const cfg = config(o);
    const body: Record<string, unknown> = o.json ? JSON.parse(o.json as string) : {};
    const set = (k: string, v: unknown) => { if (v !== undefined) body[k] = v; };
    set('controlnet_model', o.controlnet); set('prompt', o.prompt); set('negative_prompt', o.negativePrompt);
    set('init_image', await imageArg(o.initImage)); set('control_image', await imageArg(o.controlImage)); set('mask_image', await imageArg(o.maskImage));
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
      const out = resolve(o.out as string);
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
  .option('-o, --out <dir>', 'output folder', 'outputs')
  .action(async (o) => {
    const cfg = config(o);
    let r;
    try {
      r = parseRequest({ controlnet_model: o.controlnet, init_image: await imageArg(o.image), mask_image: await imageArg(o.maskImage),
        width: o.width, height: o.height, seed: o.seed });
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
      const out = resolve(o.out as string);
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
models.command('list').addOption(dataDirOpt()).action(async (o) => {
  const cfg = config(o);
  const all = await new ModelsFolder(cfg.modelsDir).listAll();
  for (const [kind, list] of Object.entries(all)) for (const m of list) say(`${kind}\t${m.id}\t${m.bytes}`);
});
models.command('pull').description('download a model: a ControlNet type (canny, depth, ...), a named extra (RealESRGAN_x4plus, RealESRGAN_x2plus, stable-diffusion-safety-checker), a hub repo id or a URL')
  .argument('<source>').addOption(dataDirOpt())
  .addOption(new Option('--kind <kind>', 'model kind').choices([...MODEL_KINDS]))
  .option('--id <id>', 'model id in the folder (default: the type, or the repo / file name)').option('--sha256 <hex>')
  .action(async (source: string, o) => {
    const cfg = config(o);
      const type = source in DEFAULT_CONTROLNET_REPOS ? (source as ControlNetType) : undefined;
    const named = Object.hasOwn(NAMED_MODELS, source) ? NAMED_MODELS[source]! : undefined;
    const src = type ? DEFAULT_CONTROLNET_REPOS[type] : named ? named.source : source;
    const kind = (o.kind as ModelKind | undefined) ?? (type ? 'controlnet' : named ? named.kind : 'base');
    const id = (o.id as string | undefined) ?? type ?? (named ? named.id ?? source : undefined) ?? src.split('/').pop()!.replace(/\.(safetensors|ckpt|bin|pt|pth)$/i, '');
    const dl = new ModelDownloader(new ModelsFolder(cfg.modelsDir), { hfEndpoint: cfg.hfEndpoint, fetch: fetchOptions(cfg) });
    const p = dl.start({ kind, id, source: src, sha256: o.sha256 as string | undefined });
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

await program.parseAsync(process.argv);
