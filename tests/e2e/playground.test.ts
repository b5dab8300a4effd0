// The playground in a real browser (Debian's chromium, driven by playwright-core) against a real server on the
// tiny demo models: upload a control image, preview its hint map, generate, see per-step progress, see the image;
// then a drawn scribble, a field error from the schema's limits, and the keyboard-only path. Screenshots go to
// test-output/playground/ (git-ignored).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import sharp from 'sharp';
import { chromium, type Browser, type FileChooser, type Page } from 'playwright-core';
import { startDemoServer, type DemoServer } from '../support/demo-server.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const OUT = join(process.cwd(), 'test-output', 'playground');

/** Installs Debian's chromium when it is missing (the tests run as root in CI; apt reaches only the registries). */
function ensureChromium(): void {
  if (existsSync(CHROMIUM)) return;
  // With its recommended packages: fonts-liberation gives the screenshots readable text.
  const install = () => spawnSync('apt-get', ['install', '-y', 'chromium'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (install().status !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'inherit' });
    assert.equal(install().status, 0, 'apt-get install chromium failed');
  }
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing after apt-get install chromium`);
}

let server: DemoServer;
let browser: Browser;
let photo: string;

before(async () => {
  ensureChromium();
  mkdirSync(OUT, { recursive: true });
  // A "photo": shapes on a coloured background, 320x240, so canny finds edges and the size follows its shape.
  photo = join(OUT, 'input-shapes.png');
  writeFileSync(photo, await sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 40, g: 90, b: 160 } } })
    .composite([{ input: Buffer.from('<svg width="320" height="240"><rect x="30" y="40" width="120" height="90" fill="#f4d35e"/>'
      + '<circle cx="220" cy="140" r="60" fill="#ee964b"/><path d="M20 220 L300 180" stroke="white" stroke-width="8"/></svg>') }]).png().toBuffer());
  // The answer comes at once ("processing"), as instant_response asks for, so the page follows the progress stream.
  server = await startDemoServer({ types: ['canny', 'scribble', 'depth'], config: { waitWindowMs: 0 } });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** A page that records console errors and uncaught exceptions, and every status line the page shows. */
async function openPage(): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.goto(server.url + '/');
  await page.waitForSelector('body[data-ready="yes"]');
  await page.evaluate(() => {
    const seen: string[] = [];
    (window as unknown as { statusSeen: string[] }).statusSeen = seen;
    const target = document.getElementById('status-text')!;
    new MutationObserver(() => seen.push(target.textContent ?? '')).observe(target, { childList: true, characterData: true, subtree: true });
  });
  return { page, problems };
}

const statusSeen = (page: Page) => page.evaluate(() => (window as unknown as { statusSeen: string[] }).statusSeen);

/** Waits for the result image and returns its natural size. */
async function resultImage(page: Page): Promise<{ w: number; h: number; src: string }> {
  await page.waitForFunction(() => {
    const img = document.querySelector<HTMLImageElement>('#images img');
    return img !== null && img.complete && img.naturalWidth > 0;
  }, undefined, { timeout: 120_000 });
  return page.evaluate(() => {
    const img = document.querySelector<HTMLImageElement>('#images img')!;
    return { w: img.naturalWidth, h: img.naturalHeight, src: img.src };
  });
}

test('main path: key, upload, hint preview, generate with live progress, full-size image, settings and curl', async () => {
  const { page, problems } = await openPage();
  await page.screenshot({ path: join(OUT, '01-empty.png') });

  await page.fill('input[name="key"]', server.key);
  await page.setInputFiles('.unit input[type="file"]', photo);
  await page.waitForSelector('.unit .drop-img:not([hidden])');
  // The picked picture's shape sets the size: 320x240 → 512x384.
  assert.equal(await page.inputValue('#f-width'), '512');
  assert.equal(await page.inputValue('#f-height'), '384');
  await page.fill('#prompt', 'a yellow box and an orange ball');
  await page.click('.unit-hint');
  await page.waitForSelector('.unit .hint-img img', { timeout: 60_000 });
  const hintOk = await page.$eval('.unit .hint-img img', (i) => (i as HTMLImageElement).decode().then(() => (i as HTMLImageElement).naturalWidth));
  assert.equal(hintOk, 512);
  await page.screenshot({ path: join(OUT, '02-hint-preview.png') });

  // Enough steps that the run lasts several of the worker's progress writes.
  await page.click('#advanced summary');
  await page.fill('#f-num_inference_steps', '10');
  await page.fill('#f-seed', '42');
  await page.click('#generate');
  await page.waitForFunction(() => document.querySelector<HTMLButtonElement>('#generate')!.disabled);
  // The previous result is cleared while it runs.
  assert.equal(await page.isVisible('#result'), false);
  await page.waitForFunction(() => /^Step \d+ \/ 10$/.test(document.getElementById('status-text')!.textContent ?? ''), undefined, { timeout: 60_000 });
  await page.screenshot({ path: join(OUT, '03-progress.png') });
  const img = await resultImage(page);
  assert.deepEqual([img.w, img.h], [512, 384]);
  assert.match(img.src, /\/outputs\//);
  await page.waitForSelector('#hints img');
  await page.screenshot({ path: join(OUT, '04-result.png') });

  const steps = (await statusSeen(page)).map((s) => /^Step (\d+) \/ (\d+)$/.exec(s)).filter((m) => m !== null);
  const values = steps.map((m) => Number(m![1]));
  assert.ok(new Set(values).size >= 2, `per-step progress was shown (saw steps ${values.join(', ')})`);
  assert.deepEqual(values, [...values].sort((a, b) => a - b), 'steps only go forward');
  assert.ok(steps.every((m) => Number(m![2]) === 10));
  assert.equal(await page.$eval('#generate', (b) => (b as HTMLButtonElement).disabled), false);
  const settings = await page.textContent('#settings');
  assert.match(settings!, /seed\s*42/);
  const curl = await page.textContent('#curl');
  assert.match(curl!, /curl -X POST '.*\/api\/v6\/images\/controlnet'/);
  assert.match(curl!, /"num_inference_steps": 10/);
  assert.doesNotMatch(curl!, new RegExp(server.key), 'the key is not written into the command');
  // The download link serves the PNG.
  const href = await page.getAttribute('#images a[download]', 'href');
  const res = await fetch(new URL(href!, server.url));
  assert.equal(res.headers.get('content-type'), 'image/png');
  // The key is kept for the next visit.
  await page.reload();
  await page.waitForSelector('body[data-ready="yes"]');
  assert.equal(await page.inputValue('input[name="key"]'), server.key);
  assert.deepEqual(problems, []);
  await page.context().close();
});

test('a drawn scribble (auto_hint turned off) generates; a mask painted over the init image is sent', async () => {
  const { page, problems } = await openPage();
  await page.fill('input[name="key"]', server.key);
  await page.selectOption('.unit-type', 'scribble');
  await page.click('.unit .drop-draw');
  const box = (await page.locator('#draw-canvas').boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.3);
  await page.mouse.down();
  for (let i = 1; i <= 12; i++) await page.mouse.move(box.x + box.width * (0.2 + i * 0.05), box.y + box.height * (0.3 + Math.sin(i / 2) * 0.2));
  await page.mouse.up();
  await page.screenshot({ path: join(OUT, '05-draw.png') });
  await page.click('#draw-ok');
  assert.equal(await page.isChecked('#auto_hint'), false);
  // Without auto_hint the preview is the drawing itself, as the model will see it.
  await page.click('.unit-hint');
  assert.equal(await page.getAttribute('.unit .hint-img img', 'src'), await page.getAttribute('.unit .drop-img', 'src'));
  await page.fill('#prompt', 'a mountain range');
  await page.click('#advanced summary');
  await page.fill('#f-num_inference_steps', '4');
  await page.click('#generate');
  const img = await resultImage(page);
  assert.deepEqual([img.w, img.h], [512, 512]);
  await page.waitForSelector('#hints img');
  // The hint shown with the result is the drawing: white strokes on black.
  const hint = await page.$eval('#hints img', (i) => (i as HTMLImageElement).src);
  const png = Buffer.from(hint.split(',')[1]!, 'base64');
  const stats = await sharp(png).stats();
  assert.ok(stats.channels[0]!.max === 255 && stats.channels[0]!.min === 0, 'the drawing has white strokes on black');
  await page.screenshot({ path: join(OUT, '06-scribble-result.png') });

  // Inpainting: an init image, a mask painted over it; the request carries both (white = repaint, on black).
  await page.click('#img2img summary');
  await page.setInputFiles('[data-slot="init_image"] input[type="file"]', photo);
  await page.waitForSelector('[data-slot="init_image"] .drop-img:not([hidden])');
  await page.click('[data-slot="mask_image"] .drop-draw');
  const mbox = (await page.locator('#draw-canvas').boundingBox())!;
  assert.ok(Math.abs(mbox.width / mbox.height - 512 / 512) < 0.02, 'the mask canvas has the request\'s shape');
  await page.mouse.move(mbox.x + mbox.width * 0.3, mbox.y + mbox.height * 0.5);
  await page.mouse.down();
  await page.mouse.move(mbox.x + mbox.width * 0.7, mbox.y + mbox.height * 0.5, { steps: 8 });
  await page.mouse.up();
  await page.screenshot({ path: join(OUT, '07-mask-draw.png') });
  await page.click('#draw-ok');
  await page.fill('#f-num_inference_steps', '2');
  const [request] = await Promise.all([page.waitForRequest((r) => r.url().endsWith('/api/v6/images/controlnet') && r.method() === 'POST'),
    page.click('#generate')]);
  const sent = request.postDataJSON();
  assert.match(sent.init_image, /^data:image\/png;base64,/);
  assert.match(sent.mask_image, /^data:image\/png;base64,/);
  const mask = await sharp(Buffer.from(sent.mask_image.split(',')[1], 'base64')).greyscale().raw().toBuffer({ resolveWithObject: true });
  const white = mask.data.filter((v) => v > 200).length / mask.data.length;
  assert.ok(white > 0.005 && white < 0.5, `the painted stroke is white, the rest black (white share ${white})`);
  await page.waitForSelector('#images img', { timeout: 120_000 });
  assert.deepEqual(problems, []);
  await page.context().close();
});

test('errors sit next to the field they name: a schema limit in the page, a server rule from the server', async () => {
  const { page, problems } = await openPage();
  // No key and no image: both named where they are fixed, and nothing is sent.
  await page.click('#generate');
  assert.match((await page.textContent('[data-error-for="key"]'))!, /API key/);
  assert.match((await page.textContent('.unit .unit-error'))!, /image/);
  await page.fill('input[name="key"]', server.key);
  await page.setInputFiles('.unit input[type="file"]', photo);
  await page.click('#advanced summary');
  // width's limits come from the schema: a multiple of 8.
  await page.fill('#f-width', '500');
  await page.click('#generate');
  assert.match((await page.textContent('[data-error-for="width"]'))!, /width must be an integer between 64 and 1024, a multiple of 8/);
  assert.equal(await page.getAttribute('#f-width', 'aria-invalid'), 'true');
  await page.fill('#f-width', '512');
  // A rule only the server knows: this model is not installed.
  await page.fill('#f-model_id', 'no-such-model');
  await page.click('#generate');
  await page.waitForFunction(() => (document.querySelector('[data-error-for="model_id"]')!.textContent ?? '') !== '');
  assert.match((await page.textContent('[data-error-for="model_id"]'))!, /model_id "no-such-model" is not installed/);
  await page.screenshot({ path: join(OUT, '08-field-error.png') });
  // The page asks for a 422 on purpose; that is the browser's one console line about it.
  assert.deepEqual(problems.filter((p) => !/status of 422/.test(p)), []);
  await page.context().close();
});

/** Presses Tab until the focused element matches `selector` (at most `max` times); true when it got there. */
async function tabTo(page: Page, selector: string, max = 40): Promise<boolean> {
  for (let i = 0; i < max; i++) {
    if (await page.evaluate((sel) => document.activeElement?.matches(sel) ?? false, selector)) return true;
    await page.keyboard.press('Tab');
  }
  return false;
}

/**
 * Space on the focused file input opens the file chooser. Under a fully loaded machine (every test file at once) one
 * full-suite run saw no chooser within 30 s after the keypress (not reproduced alone in 3 runs); the second try
 * re-checks that the picker still has focus (so a page that steals focus still fails) and presses Space again.
 */
async function openChooserWithSpace(page: Page): Promise<FileChooser> {
  for (let attempt = 1; ; attempt++) {
    try {
      const [chooser] = await Promise.all([page.waitForEvent('filechooser', { timeout: 15_000 }), page.keyboard.press('Space')]);
      return chooser;
    } catch (e) {
      if (attempt === 2) throw e;
      assert.ok(await page.evaluate(() => document.activeElement?.matches('.unit input[type="file"]') ?? false), 'the image picker kept the focus');
    }
  }
}

test('keyboard only: key, prompt, image picker, advanced settings and Ctrl+Enter reach an image', async () => {
  const { page, problems } = await openPage();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'key');
  await page.keyboard.type(server.key);
  assert.ok(await tabTo(page, '#prompt'), 'the prompt is reachable with Tab');
  await page.keyboard.type('shapes');
  assert.ok(await tabTo(page, '.unit input[type="file"]'), 'the image picker is reachable with Tab');
  const chooser = await openChooserWithSpace(page);
  await chooser.setFiles(photo);
  await page.waitForSelector('.unit .drop-img:not([hidden])');
  assert.ok(await tabTo(page, '#advanced summary'), 'the advanced settings are reachable with Tab');
  await page.keyboard.press('Enter');
  assert.ok(await tabTo(page, '#f-num_inference_steps'));
  await page.keyboard.type('6');
  await page.keyboard.press('Control+Enter');
  const img = await resultImage(page);
  assert.deepEqual([img.w, img.h], [512, 384]);
  const settings = await page.textContent('#settings');
  assert.match(settings!, /steps\s*6/);
  assert.deepEqual(problems, []);
  await page.context().close();
});
