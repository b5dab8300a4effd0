// /openapi.json is generated from the routes' own zod schemas and validates as OpenAPI 3.1 (a real validator);
// /docs serves the reference UI with its assets from the npm package (no network).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Validator } from '@seriousme/openapi-schema-validator';
import { startTestApp, type TestApp } from './harness.ts';
import { GENERATE_ROUTES } from '../../src/api/routes/generate.ts';
import { FETCH_BODY_PATHS, FETCH_GET_PATHS, FETCH_ID_PATHS } from '../../src/api/routes/fetch.ts';
import { HINT_PATHS } from '../../src/api/routes/hint.ts';
import { ENTERPRISE_ENDPOINTS } from '../../src/api/routes/enterprise.ts';

let t: TestApp;
let doc: any;
before(async () => {
  t = await startTestApp();
  doc = await (await fetch(`${t.url}/openapi.json`)).json();
});
after(async () => { await t.close(); });

const oa = (p: string) => p.replace(/:(\w+)/g, '{$1}');

test('the document validates as OpenAPI 3.1 and its $refs resolve', async () => {
  assert.equal(doc.openapi, '3.1.0');
  const v = new Validator();
  const res = await v.validate(structuredClone(doc)); // resolveRefs() below dereferences in place
  assert.equal(res.valid, true, JSON.stringify(res.errors));
  assert.equal(v.version, '3.1');
  assert.doesNotThrow(() => v.resolveRefs());
});

test('every API route is in it, with its own body schema, key required and the key schemes applied', () => {
  const post = [...GENERATE_ROUTES.map((r) => r.path), ...FETCH_ID_PATHS, ...FETCH_BODY_PATHS, ...HINT_PATHS];
  for (const n of ENTERPRISE_ENDPOINTS) {
    if (n !== 'update') post.push(`/api/v1/enterprise/${n}`);
    post.push(`/api/v1/enterprise/images/${n}`);
  }
  assert.equal(post.length, 25 + 7 + 2 + 3 + 23);
  for (const p of post) {
    const op = doc.paths[oa(p)]?.post;
    assert.ok(op, `POST ${p} is documented`);
    assert.deepEqual(op.security, [{ bearer: [] }, { keyHeader: [] }, {}], p);
    const ref: string = op.requestBody.content['application/json'].schema.$ref;
    const body = doc.components.schemas[ref.replace('#/components/schemas/', '')];
    assert.ok(body.required.includes('key'), `${p}: key is required`);
  }
  for (const p of FETCH_GET_PATHS) assert.ok(doc.paths[oa(p)].get, `GET ${p}`);
  assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), ['bearer', 'keyHeader']);
  const ref = (p: string) => doc.paths[p].post.requestBody.content['application/json'].schema.$ref;
  // Management endpoints document their own bodies, not load_model's; generate and fetch their result bodies.
  assert.notEqual(ref('/api/v1/enterprise/clear_cache'), ref('/api/v1/enterprise/load_model'));
  assert.ok(doc.components.schemas[ref('/api/v1/enterprise/load_model').split('/').pop()].required.includes('url'));
  assert.equal(doc.paths['/api/v1/enterprise/system_details'].post.responses['200'].content['application/json'].schema.$ref,
    '#/components/schemas/AdminResult');
  assert.equal(doc.paths['/api/v7/images/text-to-image'].post.responses['200'].content['application/json'].schema.$ref, '#/components/schemas/Result');
  assert.notEqual(ref('/api/v6/images/text2img'), ref('/api/v1/enterprise/text2img'), 'each family its own defaults');
});

test('accepted input forms are described: numeric strings, comma lists, booleans for yes/no', () => {
  const cn = doc.components.schemas.ControlNetRequestInput.properties;
  assert.ok(cn.samples.anyOf.some((f: any) => f.type === 'string' && f.pattern), 'numeric string');
  assert.ok(cn.controlnet_model.anyOf.some((f: any) => f.type === 'string' && /comma list/.test(f.description)));
  assert.ok(cn.lora_strength.anyOf.some((f: any) => f.type === 'array'));
  assert.ok(cn.safety_checker.anyOf.some((f: any) => f.type === 'boolean'));
  const v6 = doc.components.schemas.V6Text2ImgRequestInput;
  assert.ok(v6.required.includes('prompt'));
  assert.equal(v6.properties.num_inference_steps.default, 31);
  assert.equal(doc.components.schemas.EnterpriseText2ImgRequestInput.properties.num_inference_steps.default, 21);
});

test('/docs is the reference UI, served with its own assets', async () => {
  const res = await fetch(`${t.url}/docs`);
  assert.equal(res.status, 200);
  const html = await res.text();
  assert.match(html, /swagger-ui/i);
  const scripts = [...html.matchAll(/src="([^"]+\.js)"/g)].map((m) => m[1]!);
  assert.ok(scripts.length > 0, html.slice(0, 500));
  for (const s of scripts) {
    const a = await fetch(new URL(s, `${t.url}/docs/`));
    assert.equal(a.status, 200, s);
    if (s.includes('initializer')) assert.match(await a.text(), /\/openapi\.json/);
    else assert.ok((await a.arrayBuffer()).byteLength > 1000, s);
  }
});
