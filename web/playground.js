// The playground: a form built from the server's request schema (/playground/form.json), images picked, dropped or
// drawn, hint maps previewed through the hint endpoint, generation followed on the progress stream, results shown
// at full size with their settings and the equivalent curl command. Plain browser JavaScript, no build step.

const $ = (sel, root = document) => root.querySelector(sel);
const KEY_STORAGE = 'controlnet-playground-key';
/** Fields the main panel sets itself; every other schema field goes to "Advanced settings". */
const MAIN_FIELDS = new Set(['key', 'prompt', 'controlnet_model', 'controlnet_type', 'controlnet_conditioning_scale', 'auto_hint',
  'init_image', 'control_image', 'mask_image', 'base64', 'instant_response']);
/** The advanced fields people change most, first; the rest follow in the schema's order. */
const ADVANCED_ORDER = ['negative_prompt', 'width', 'height', 'num_inference_steps', 'guidance_scale', 'seed', 'samples', 'scheduler',
  'strength', 'model_id'];
/** Settings shown with a result, from its meta, in this order. */
const META_SHOWN = ['seed', 'model_id', 'controlnet_model', 'controlnet_conditioning_scale', 'auto_hint', 'scheduler', 'steps',
  'num_inference_steps', 'guidance_scale', 'W', 'H', 'strength', 'safety_checker', 'upscale', 'enhance_prompt', 'multi_lingual'];

const form = await (await fetch('/playground/form.json')).json();
const props = form.request.properties;
const endpoints = form.endpoints;

// ---------- small helpers ----------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  e.append(...children);
  return e;
}

/** The first JSON type of a schema property (a nullable property lists "null" too). */
function typeOf(p) {
  if (!p) return 'string';
  if (Array.isArray(p.type)) return p.type.find((t) => t !== 'null') ?? 'string';
  if (p.type) return p.type;
  if (p.anyOf) return typeOf(p.anyOf.find((s) => s.type !== 'null'));
  return 'string';
}

const readAsDataUrl = (blob) => new Promise((resolve, reject) => {
  const r = new FileReader();
  r.onload = () => resolve(r.result);
  r.onerror = () => reject(r.error);
  r.readAsDataURL(blob);
});

const loadImage = (src) => new Promise((resolve, reject) => {
  const img = new Image();
  img.onload = () => resolve(img);
  img.onerror = () => reject(new Error('not an image this browser can read'));
  img.src = src;
});

/** A picked file as a data URL; photos larger than 1536 px on a side are scaled to 1024 (the server resizes anyway). */
async function fileToDataUrl(file) {
  const url = await readAsDataUrl(file);
  const img = await loadImage(url);
  const long = Math.max(img.naturalWidth, img.naturalHeight);
  if (long <= 1536 && file.size <= 6 * 1024 * 1024) return { url, width: img.naturalWidth, height: img.naturalHeight };
  const s = 1024 / long;
  const c = el('canvas', { width: Math.round(img.naturalWidth * s), height: Math.round(img.naturalHeight * s) });
  c.getContext('2d').drawImage(img, 0, 0, c.width, c.height);
  return { url: c.toDataURL('image/jpeg', 0.92), width: c.width, height: c.height };
}

// ---------- errors next to fields ----------

function clearErrors() {
  for (const p of document.querySelectorAll('.field-error')) p.textContent = '';
  for (const i of document.querySelectorAll('[aria-invalid=true]')) i.removeAttribute('aria-invalid');
  $('#error').hidden = true;
}

function fieldError(name, message, unitIndex) {
  let target;
  if (unitIndex !== undefined && units[unitIndex]) target = $('.unit-error', units[unitIndex].root);
  else target = document.querySelector(`[data-error-for="${name}"]`);
  const input = unitIndex === undefined ? document.querySelector(`[name="${name}"]`) : null;
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    const details = input.closest('details');
    if (details) details.open = true;
  }
  if (!target) return false;
  target.textContent = message;
  return true;
}

function showError(message) {
  const box = $('#error');
  box.textContent = message;
  box.hidden = false;
}

/** Puts a server error next to the field it names (its first word), else in the error box above the result. */
function placeServerError(message, status) {
  if (status === 401) {
    fieldError('key', message);
    $('#key').focus();
    return;
  }
  const field = /^([a-z][a-z0-9_]*)\b/.exec(message)?.[1];
  if (field === 'controlnet_model' || field === 'controlnet_type' || field === 'auto_hint') {
    const i = units.findIndex((u) => message.includes(`"${u.type()}"`) || message.includes(` ${u.type()} `));
    if (i >= 0 && fieldError(field, message, i)) return showError(message);
  }
  if (field === 'control_image' && units.length) {
    const i = Math.max(0, units.findIndex((u) => !u.drop.value));
    if (fieldError(field, message, i)) return showError(message);
  }
  if (field && props[field]) fieldError(field, message);
  showError(message);
}

// ---------- API key ----------

const keyInput = $('#key');
keyInput.value = localStorage.getItem(KEY_STORAGE) ?? '';
keyInput.addEventListener('input', () => localStorage.setItem(KEY_STORAGE, keyInput.value.trim()));
const apiKey = () => keyInput.value.trim();
$('#key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  $('#prompt').focus();
});

// ---------- image slots: pick, drop or draw ----------

/** An image slot in `container`: a file input inside a drop zone, a Draw button and a Remove button. */
function makeDrop(container, { label, drawMode, onChange }) {
  container.append($('#drop-template').content.cloneNode(true));
  const zone = $('.drop-zone', container);
  const input = $('input[type=file]', container);
  const img = $('.drop-img', container);
  const clear = $('.drop-clear', container);
  input.setAttribute('aria-label', label);
  input.name = container.dataset.slot ?? 'control_image';
  const slot = {
    value: undefined, width: 0, height: 0, drawn: false,
    set(v) {
      Object.assign(slot, v);
      img.src = v.url;
      img.hidden = false;
      zone.classList.add('has-image');
      clear.hidden = false;
      onChange?.(slot);
    },
    clear() {
      slot.value = undefined;
      slot.drawn = false;
      img.hidden = true;
      img.removeAttribute('src');
      zone.classList.remove('has-image');
      clear.hidden = true;
      input.value = '';
      onChange?.(slot);
    },
  };
  const take = async (file) => {
    if (!file) return;
    try {
      const { url, width, height } = await fileToDataUrl(file);
      slot.set({ value: url, url, width, height, drawn: false });
    } catch (e) {
      const err = container.parentElement.querySelector('.field-error');
      if (err) err.textContent = `${file.name}: ${e.message}`;
    }
  };
  input.addEventListener('change', () => take(input.files[0]));
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    take(e.dataTransfer.files[0]);
  });
  clear.addEventListener('click', () => slot.clear());
  $('.drop-draw', container).addEventListener('click', async () => {
    const drawn = await draw(drawMode(), slot.drawn ? slot.layer : undefined);
    if (drawn) slot.set({ ...drawn, drawn: true });
  });
  return slot;
}

// ---------- the drawing surface ----------

const dialog = $('#draw-dialog');
const canvas = $('#draw-canvas');
const ctx2d = canvas.getContext('2d');
let layer; // white strokes on transparent, at canvas size
let backdrop; // image under the strokes (mask mode)
let strokeAlpha = 1;

function paint() {
  ctx2d.globalAlpha = 1;
  ctx2d.fillStyle = '#000';
  ctx2d.fillRect(0, 0, canvas.width, canvas.height);
  if (backdrop) ctx2d.drawImage(backdrop, 0, 0, canvas.width, canvas.height);
  ctx2d.globalAlpha = strokeAlpha;
  ctx2d.drawImage(layer, 0, 0);
  ctx2d.globalAlpha = 1;
}

{
  let last;
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * (canvas.width / r.width), (e.clientY - r.top) * (canvas.height / r.height)];
  };
  const line = (a, b) => {
    const c = layer.getContext('2d');
    c.strokeStyle = '#fff';
    c.lineCap = 'round';
    c.lineJoin = 'round';
    c.lineWidth = Number($('#brush').value) * (canvas.width / 512);
    c.beginPath();
    c.moveTo(...a);
    c.lineTo(...b);
    c.stroke();
    paint();
  };
  canvas.addEventListener('pointerdown', (e) => { canvas.setPointerCapture(e.pointerId); last = at(e); line(last, last); });
  canvas.addEventListener('pointermove', (e) => { if (!last) return; const p = at(e); line(last, p); last = p; });
  const stop = () => { last = undefined; };
  canvas.addEventListener('pointerup', stop);
  canvas.addEventListener('pointercancel', stop);
  $('#draw-clear').addEventListener('click', () => { layer.getContext('2d').clearRect(0, 0, layer.width, layer.height); paint(); });
}

/**
 * Opens the drawing dialog. mode: { title, help, width, height, backdrop?: data URL, alpha }. Resolves with
 * { value, url, width, height, layer } (white strokes on black, as a hint map or a mask) or undefined if cancelled.
 */
async function draw(mode, previous) {
  const long = Math.max(mode.width, mode.height);
  canvas.width = Math.round((512 * mode.width) / long);
  canvas.height = Math.round((512 * mode.height) / long);
  canvas.style.aspectRatio = `${canvas.width} / ${canvas.height}`;
  layer = el('canvas', { width: canvas.width, height: canvas.height });
  if (previous) layer.getContext('2d').drawImage(previous, 0, 0, canvas.width, canvas.height);
  backdrop = mode.backdrop ? await loadImage(mode.backdrop) : undefined;
  strokeAlpha = mode.alpha ?? 1;
  $('#draw-title').textContent = mode.title;
  $('#draw-help').textContent = mode.help;
  paint();
  dialog.returnValue = '';
  dialog.showModal();
  await new Promise((r) => dialog.addEventListener('close', r, { once: true }));
  if (dialog.returnValue !== 'ok') return undefined;
  const out = el('canvas', { width: canvas.width, height: canvas.height });
  const c = out.getContext('2d');
  c.fillStyle = '#000';
  c.fillRect(0, 0, out.width, out.height);
  c.drawImage(layer, 0, 0);
  const url = out.toDataURL('image/png');
  return { value: url, url, width: out.width, height: out.height, layer };
}

// ---------- advanced settings, from the schema ----------

const advanced = $('#advanced-fields');
const advancedNames = [...ADVANCED_ORDER.filter((n) => props[n]), ...Object.keys(props).filter((n) => !MAIN_FIELDS.has(n) && !ADVANCED_ORDER.includes(n))];

function describe(name, p) {
  const t = typeOf(p);
  const bits = [];
  if (p.description) bits.push(p.description);
  if (p.default !== undefined && !p.enum && !Array.isArray(p.default)) bits.push(`default ${p.default === '' ? 'empty' : p.default}`);
  if (p.minimum !== undefined && p.maximum !== undefined) bits.push(`${p.minimum}–${p.maximum}${p.multipleOf ? `, multiple of ${p.multipleOf}` : ''}`);
  if (t === 'array') bits.push('comma list');
  return bits.join(' · ');
}

for (const name of advancedNames) {
  const p = props[name];
  const t = typeOf(p);
  const id = `f-${name}`;
  let input;
  if (p.enum) {
    input = el('select', { id, name });
    const def = p.default;
    input.append(new Option(def !== undefined ? `server default (${def})` : '(none)', ''));
    for (const v of p.enum) if (v !== null) input.append(new Option(String(v), String(v)));
  } else if (t === 'integer' || t === 'number') {
    input = el('input', { id, name, type: 'number', inputmode: 'decimal', min: p.minimum, max: p.maximum,
      step: p.multipleOf ?? (t === 'integer' ? 1 : 'any'), placeholder: p.default ?? (name === 'seed' ? 'random' : '') });
  } else if (t === 'string' && (p.maxLength ?? 0) > 2048) {
    input = el('textarea', { id, name, rows: 2, placeholder: p.default || '' });
  } else {
    input = el('input', { id, name, type: 'text', placeholder: p.default ?? (name === 'model_id' && form.default_model_id ? form.default_model_id : '') });
  }
  const wide = input.tagName === 'TEXTAREA';
  const help = describe(name, p);
  advanced.append(el('div', { class: `field${wide ? ' wide' : ''}` },
    el('label', { for: id, text: name }), input, ...(help ? [el('p', { class: 'help', text: help })] : []),
    el('p', { class: 'field-error', 'data-error-for': name, role: 'alert' })));
}

/** The advanced fields the user set (empty means: the server's default), checked against the schema's limits. */
function advancedValues(errors) {
  const out = {};
  for (const name of advancedNames) {
    const input = document.getElementById(`f-${name}`);
    const raw = input.value.trim();
    if (raw === '') continue;
    const p = props[name];
    const t = typeOf(p);
    if (t === 'integer' || t === 'number') {
      const n = Number(raw);
      const range = p.minimum !== undefined && p.maximum !== undefined ? ` between ${p.minimum} and ${p.maximum}` : '';
      const rule = `${name} must be ${t === 'integer' ? 'an integer' : 'a number'}${range}${p.multipleOf ? `, a multiple of ${p.multipleOf}` : ''}`;
      if (!Number.isFinite(n) || (t === 'integer' && !Number.isInteger(n)) || (p.minimum !== undefined && n < p.minimum)
        || (p.maximum !== undefined && n > p.maximum) || (p.multipleOf && n % p.multipleOf !== 0)) errors.push([name, rule]);
      out[name] = n;
    } else if (t === 'array') {
      const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
      out[name] = typeOf(p.items) === 'number' ? items.map(Number) : items;
    } else out[name] = raw;
  }
  return out;
}

const sizeInputs = { width: document.getElementById('f-width'), height: document.getElementById('f-height') };
const sizeTouched = { width: false, height: false };
for (const k of ['width', 'height']) sizeInputs[k]?.addEventListener('input', () => { sizeTouched[k] = true; });
const sizeOf = () => ({
  width: Number(sizeInputs.width?.value || props.width?.default || 512),
  height: Number(sizeInputs.height?.value || props.height?.default || 512),
});
// A demo default model names an example request (form.example): start from its prompt and native size.
const LONG_SIDE = form.example ? Math.max(form.example.width, form.example.height) : 512;
if (form.example) {
  $('#prompt').placeholder = form.example.prompt;
  if (!$('#prompt').value) $('#prompt').value = form.example.prompt;
  for (const k of ['width', 'height']) if (sizeInputs[k]) sizeInputs[k].value = String(form.example[k]);
}

/** The first picture picked sets width and height (keeping its shape, long side LONG_SIDE) unless the user set them. */
function fitSizeTo(w, h) {
  if (!sizeInputs.width || !sizeInputs.height || sizeTouched.width || sizeTouched.height || !w || !h) return;
  const long = Math.max(w, h);
  const r8 = (v) => Math.max(64, Math.round((v * LONG_SIDE) / long / 8) * 8);
  sizeInputs.width.value = String(r8(w));
  sizeInputs.height.value = String(r8(h));
}

// ---------- ControlNet units ----------

const units = [];
const installed = new Set(form.installed_controlnets);
const scaleProp = props.controlnet_conditioning_scale?.items ?? { minimum: 0, maximum: 2 };

function addUnit(type) {
  const root = $('#unit-template').content.firstElementChild.cloneNode(true);
  $('#units').append(root);
  const select = $('.unit-type', root);
  for (const t of form.controlnet_types) {
    const o = new Option(installed.has(t) ? t : `${t} (not installed)`, t);
    o.disabled = !installed.has(t);
    select.append(o);
  }
  const used = new Set(units.map((u) => u.type()));
  select.value = type ?? form.controlnet_types.find((t) => installed.has(t) && !used.has(t)) ?? form.controlnet_types[0];
  const scale = $('.unit-scale', root);
  scale.min = String(scaleProp.minimum ?? 0);
  scale.max = String(Math.min(scaleProp.maximum ?? 2, 2));
  scale.value = '1';
  scale.setAttribute('aria-label', 'ControlNet weight (controlnet_conditioning_scale)');
  const out = $('output', root);
  const showScale = () => { out.textContent = Number(scale.value).toFixed(2); };
  scale.addEventListener('input', showScale);
  showScale();
  const preview = $('.hint-img', root);
  const resetPreview = () => {
    unit.hint = undefined;
    preview.replaceChildren('the hint map the model will see');
  };
  const unit = {
    root, hint: undefined,
    type: () => select.value,
    scale: () => Number(scale.value),
    drop: makeDrop($('.drop', root), {
      label: 'control image',
      drawMode: () => ({ title: 'Draw a scribble', help: 'white lines on black, like a scribble hint map', ...sizeOf(), alpha: 1 }),
      onChange: (slot) => {
        resetPreview();
        $('.unit-error', root).textContent = '';
        if (slot.value && !slot.drawn && units[0] === unit) fitSizeTo(slot.width, slot.height);
        if (slot.drawn && $('#auto_hint').checked) {
          $('#auto_hint').checked = false;
          $('#auto-hint-note').textContent = 'Turned off: your drawing is used as the hint map as it is.';
        }
      },
    }),
  };
  select.addEventListener('change', resetPreview);
  $('.unit-remove', root).addEventListener('click', () => {
    if (units.length === 1) return;
    units.splice(units.indexOf(unit), 1);
    root.remove();
  });
  $('.unit-hint', root).addEventListener('click', () => previewHint(unit));
  resetPreview();
  units.push(unit);
  return unit;
}

async function previewHint(unit) {
  const err = $('.unit-error', unit.root);
  err.textContent = '';
  const image = unit.drop.value ?? initSlot.value;
  if (!image) {
    err.textContent = 'Drop an image on this ControlNet first (or draw one).';
    return;
  }
  const button = $('.unit-hint', unit.root);
  const box = $('.hint-img', unit.root);
  if (!$('#auto_hint').checked) {
    // Without auto_hint the picture itself is the hint map.
    unit.hint = { type: unit.type(), image, src: image };
    box.replaceChildren(el('img', { src: image, alt: `${unit.type()} hint map (the image as it is)` }));
    return;
  }
  if (!apiKey()) return fieldError('key', 'Enter your API key first: the server printed one at its first start.');
  button.disabled = true;
  box.replaceChildren('detecting…');
  try {
    const body = { key: apiKey(), controlnet_model: [unit.type()], control_image: image, ...sizeOf() };
    const res = await fetch(endpoints.hint, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const json = await res.json();
    if (json.status !== 'success') throw Object.assign(new Error(json.message ?? `HTTP ${res.status}`), { status: res.status });
    unit.hint = { type: unit.type(), image, src: toSrc(json.output[0]) };
    box.replaceChildren(el('img', { src: unit.hint.src, alt: `${unit.type()} hint map` }));
  } catch (e) {
    box.replaceChildren('no preview');
    if (e.status === 401) fieldError('key', e.message);
    else err.textContent = e.message;
  } finally {
    button.disabled = false;
  }
}

$('#auto_hint').addEventListener('change', () => {
  for (const u of units) $('.hint-img', u.root).replaceChildren('the hint map the model will see');
  for (const u of units) u.hint = undefined;
});
$('#add-unit').addEventListener('click', () => {
  if (units.length >= form.controlnet_types.length) return;
  const u = addUnit();
  $('.unit-type', u.root).focus();
});
addUnit(installed.has('canny') ? 'canny' : undefined);

const initSlot = makeDrop(document.querySelector('[data-slot="init_image"]'), {
  label: 'init image',
  drawMode: () => ({ title: 'Draw an init image', help: 'white on black', ...sizeOf(), alpha: 1 }),
  onChange: (slot) => { if (slot.value && !slot.drawn && !units.some((u) => u.drop.value)) fitSizeTo(slot.width, slot.height); },
});
const maskSlot = makeDrop(document.querySelector('[data-slot="mask_image"]'), {
  label: 'mask image',
  drawMode: () => ({ title: 'Paint the mask', help: 'paint over what should be repainted', ...sizeOf(),
    backdrop: initSlot.value, alpha: initSlot.value ? 0.6 : 1 }),
});

// ---------- generating ----------

const toSrc = (s) => (/^(https?:|data:|\/)/.test(s) ? s : `data:image/png;base64,${s}`);

/** The request body the form describes, or undefined after putting each problem next to its field. */
function requestBody() {
  const errors = [];
  if (!apiKey()) errors.push(['key', 'Enter your API key: the server printed one at its first start (or use "controlnet keys create").']);
  const body = { key: apiKey(), prompt: $('#prompt').value };
  body.controlnet_model = units.map((u) => u.type());
  const scales = units.map((u) => u.scale());
  if (scales.some((s) => s !== 1)) body.controlnet_conditioning_scale = scales;
  const images = units.map((u) => u.drop.value);
  if (images.every(Boolean)) body.control_image = images;
  else if (!initSlot.value) {
    units.forEach((u, i) => { if (!u.drop.value) errors.push(['control_image', 'Drop an image here, pick one, or draw one.', i]); });
  } else if (images.some(Boolean)) {
    units.forEach((u, i) => { if (!u.drop.value) errors.push(['control_image', 'Give every ControlNet an image (or none of them: the init image is used).', i]); });
  }
  body.auto_hint = $('#auto_hint').checked ? 'yes' : 'no';
  if (initSlot.value) body.init_image = initSlot.value;
  if (maskSlot.value) {
    if (!initSlot.value) errors.push(['mask_image', 'A mask needs an init image: inpainting repaints the init image.']);
    body.mask_image = maskSlot.value;
  }
  Object.assign(body, advancedValues(errors));
  // Answer "processing" at once (where the server supports it) so the progress stream starts right away.
  body.instant_response = 'yes';
  if (errors.length) {
    for (const [name, message, unit] of errors) fieldError(name, message, unit);
    const [name, , unit] = errors[0];
    (unit !== undefined ? $('input[type=file]', units[unit].root) : document.querySelector(`[name="${name}"]`))?.focus();
    return undefined;
  }
  return body;
}

function setStatus(text, eta, fraction) {
  $('#status').hidden = false;
  $('#status-text').textContent = text;
  $('#status-eta').textContent = eta ?? '';
  const bar = $('#progress');
  if (fraction === undefined) bar.removeAttribute('value');
  else bar.value = fraction;
}

function showProgress(data) {
  const eta = data.eta !== undefined ? `about ${data.eta < 10 ? data.eta.toFixed(1) : Math.round(data.eta)} s left` : '';
  if (data.step > 0) setStatus(`Step ${data.step} / ${data.total_steps}`, eta, data.step / Math.max(1, data.total_steps));
  else setStatus('Waiting for the engine…', eta, undefined);
}

/** Reads the SSE progress stream of job `id` until its `done` event; returns that event's body (a fetch answer). */
async function follow(id) {
  const res = await fetch(endpoints.progress.replace('{id}', String(id)), { headers: { authorization: `Bearer ${apiKey()}`, accept: 'text/event-stream' } });
  if (!res.ok || !res.body) return (await res.json().catch(() => undefined)) ?? poll(id);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return poll(id); // the stream ended early: ask the fetch endpoint
    buf += value;
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (!data) continue;
      const body = JSON.parse(data);
      if (event === 'done') {
        reader.cancel().catch(() => {});
        return body;
      }
      showProgress(body);
    }
  }
}

/** Asks the fetch endpoint until the job is finished (when no progress stream is available). */
async function poll(id) {
  for (;;) {
    const res = await fetch(endpoints.fetch.replace('{id}', String(id)), { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: apiKey() }) });
    const body = await res.json();
    if (body.status !== 'processing') return body;
    showProgress({ ...body, step: 0 });
    await new Promise((r) => setTimeout(r, Math.min(5000, Math.max(500, (body.eta ?? 1) * 500))));
  }
}

let busy = false;

async function generate() {
  if (busy) return;
  clearErrors();
  const body = requestBody();
  if (!body) return;
  busy = true;
  const button = $('#generate');
  button.disabled = true;
  button.textContent = 'Generating…';
  $('#result').hidden = true;
  $('#images').replaceChildren();
  $('#hints').replaceChildren();
  $('#hints-title').hidden = true;
  $('#empty').hidden = true;
  const { width, height } = { ...sizeOf(), ...body };
  const pending = $('#pending');
  pending.style.width = `${width}px`;
  pending.style.aspectRatio = `${width} / ${height}`;
  pending.hidden = false;
  setStatus('Starting…', '', undefined);
  if (matchMedia('(max-width: 900px)').matches) $('#status').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  const started = performance.now();
  try {
    const res = await fetch(endpoints.generate, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    let answer = await res.json();
    if (answer.status === 'processing') {
      showProgress({ ...answer, step: 0 });
      answer = await follow(answer.id);
    }
    if (answer.status !== 'success') {
      $('#status').hidden = true;
      placeServerError(answer.message ?? `the server answered HTTP ${res.status}`, res.status);
      if (!$('#result').hidden || $('#images').childElementCount === 0) $('#empty').hidden = false;
      return;
    }
    setStatus(`Done in ${((performance.now() - started) / 1000).toFixed(1)} s`, answer.generationTime !== undefined ? `engine ${answer.generationTime} s` : '', 1);
    await showResult(answer, body);
  } catch (e) {
    $('#status').hidden = true;
    showError(`Could not reach the server: ${e.message}`);
    $('#empty').hidden = false;
  } finally {
    $('#pending').hidden = true;
    busy = false;
    button.disabled = false;
    button.textContent = 'Generate';
  }
}

async function showResult(answer, body) {
  const meta = answer.meta ?? {};
  const seed = meta.seed;
  $('#images').replaceChildren(...answer.output.map((src, i) => {
    const url = toSrc(src);
    const img = el('img', { src: url, alt: `generated image ${i + 1}${body.prompt ? `: ${body.prompt}` : ''}` });
    img.addEventListener('load', () => {
      $('.size', fig).textContent = `${img.naturalWidth}×${img.naturalHeight}`;
    }, { once: true });
    const fig = el('figure', {}, img, el('figcaption', {},
      el('span', { class: 'muted' }, el('span', { class: 'size' }), seed !== undefined ? ` · seed ${seed}` : ''),
      el('span', {}, el('a', { href: url, target: '_blank', rel: 'noopener', text: 'full size' }), ' · ',
        el('a', { href: url, download: `controlnet-${seed ?? answer.id ?? 'image'}-${i + 1}.png`, text: 'download' }))));
    return fig;
  }));
  const settings = $('#settings');
  settings.replaceChildren();
  const shown = new Set();
  for (const k of META_SHOWN) {
    if (meta[k] === undefined || meta[k] === null || meta[k] === '' || shown.has(k)) continue;
    shown.add(k);
    settings.append(el('dt', { text: k }), el('dd', { text: Array.isArray(meta[k]) ? meta[k].join(', ') : String(meta[k]) }));
  }
  // Say next to each advanced setting what this server did with it, when meta reports it could not apply it.
  for (const note of document.querySelectorAll('.server-note')) note.remove();
  for (const [k, v] of Object.entries(meta)) {
    const input = document.getElementById(`f-${k}`);
    if (input && typeof v === 'string' && /unavailable|not applied|ignored/i.test(v)) {
      input.after(el('p', { class: 'help server-note', text: `last run: ${v} on this server` }));
    }
  }
  if (answer.generationTime !== undefined) settings.append(el('dt', { text: 'generation time' }), el('dd', { text: `${answer.generationTime} s` }));
  if (seed !== undefined) {
    const reuse = el('button', { type: 'button', class: 'ghost', text: 'Reuse this seed' });
    reuse.addEventListener('click', () => {
      const s = document.getElementById('f-seed');
      if (!s) return;
      s.value = String(seed);
      $('#advanced').open = true;
      s.focus();
    });
    settings.append(el('dt', {}), el('dd', {}, reuse));
  }
  const curl = curlCommand(body);
  $('#curl').textContent = curl.shown;
  $('#copy-curl').onclick = async () => {
    await navigator.clipboard.writeText(curl.full).then(() => { $('#copy-note').textContent = 'copied (with the full images)'; },
      () => { $('#copy-note').textContent = 'the browser refused the clipboard: select the text above'; });
  };
  $('#result').hidden = false;
  await showHints(body);
}

/** The hint maps the ControlNets saw: the previewed ones, the image itself when auto_hint was off, else asked for now. */
async function showHints(body) {
  const figs = [];
  for (const [i, u] of units.entries()) {
    const image = body.control_image?.[i] ?? body.init_image;
    let src;
    if (body.auto_hint !== 'yes') src = image;
    else if (u.hint && u.hint.type === body.controlnet_model[i] && u.hint.image === image) src = u.hint.src;
    else {
      try {
        const res = await fetch(endpoints.hint, { method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ key: body.key, controlnet_model: [body.controlnet_model[i]], control_image: image, width: body.width, height: body.height }) });
        const json = await res.json();
        if (json.status === 'success') src = toSrc(json.output[0]);
      } catch { /* the result stands without its hint map */ }
    }
    if (src) figs.push(el('figure', {}, el('img', { src, alt: `${body.controlnet_model[i]} hint map` }),
      el('figcaption', { text: `${body.controlnet_model[i]} hint · weight ${body.controlnet_conditioning_scale?.[i] ?? 1}` })));
  }
  $('#hints').replaceChildren(...figs);
  $('#hints-title').hidden = figs.length === 0;
}

/** The equivalent curl command: `shown` with images abbreviated, `full` with them; the key comes from $CONTROLNET_API_KEY. */
function curlCommand(body) {
  const { key: _key, instant_response: _ir, ...rest } = body;
  const abbreviate = (v) => (typeof v === 'string' && v.startsWith('data:') && v.length > 120
    ? `${v.slice(0, 40)}…(${Math.round((v.length * 3) / 4 / 1024)} kB image)` : v);
  const shownBody = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, Array.isArray(v) ? v.map(abbreviate) : abbreviate(v)]));
  const url = new URL(endpoints.generate, location.href).href;
  const cmd = (b) => `curl -X POST '${url}' \\\n  -H 'Content-Type: application/json' \\\n  -H "Authorization: Bearer $CONTROLNET_API_KEY" \\\n  -d '${JSON.stringify(b, null, 1).replace(/'/g, "'\\''")}'`;
  return { shown: cmd(shownBody), full: cmd(rest) };
}

$('#form').addEventListener('submit', (e) => {
  e.preventDefault();
  void generate();
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    void generate();
  }
});
document.body.dataset.ready = 'yes';
