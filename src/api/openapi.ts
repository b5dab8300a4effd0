// The OpenAPI document served at /docs, its request body generated from the one request schema.
import { requestJsonSchema } from '../request/schema.ts';
import { GENERATE_PATHS } from './routes/generate.ts';
import { FETCH_BODY_PATHS, FETCH_ID_PATHS } from './routes/fetch.ts';
import { ENTERPRISE_ENDPOINTS, VERSION } from './routes/enterprise.ts';

const errorSchema = { type: 'object', properties: { status: { const: 'error' }, message: { type: 'string' }, messege: { type: 'string' } } };
const resultSchema = {
  type: 'object',
  description: 'success, processing (eta, fetch_result, future_links) or error body',
  properties: {
    status: { enum: ['success', 'processing', 'error'] }, id: { type: 'integer' }, generationTime: { type: 'number' },
    output: { type: 'array', items: { type: 'string' } }, proxy_links: { type: 'array', items: { type: 'string' } },
    future_links: { type: 'array', items: { type: 'string' } }, eta: { type: 'number' }, fetch_result: { type: 'string' },
    nsfw_content_detected: { type: 'boolean' }, meta: { type: 'object' }, message: { type: 'string' }, messege: { type: 'string' },
  },
};

export function openApiDocument(): Record<string, unknown> {
  const { $schema: _drop, ...body } = requestJsonSchema();
  const responses = {
    200: { description: 'success or processing', content: { 'application/json': { schema: { $ref: '#/components/schemas/Result' } } } },
    ...Object.fromEntries(['400', '401', '404', '413', '422', '429', '500', '503'].map((c) => [c, {
      description: 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }])),
  };
  const paths: Record<string, unknown> = {};
  for (const p of GENERATE_PATHS) {
    paths[p] = { post: { summary: 'Generate with ControlNet', requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/ControlNetRequest' } } } }, responses } };
  }
  for (const p of FETCH_ID_PATHS) {
    paths[p.replace(':id', '{id}')] = { post: { summary: 'Result of a queued request',
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'integer' } }],
      requestBody: { content: { 'application/json': { schema: { type: 'object', properties: { key: { type: 'string' } } } } } }, responses } };
  }
  for (const p of FETCH_BODY_PATHS) {
    paths[p] = { post: { summary: 'Result of a queued request (id in the body)',
      requestBody: { content: { 'application/json': { schema: { type: 'object', properties: { key: { type: 'string' }, request_id: { type: 'integer' } } } } } }, responses } };
  }
  const adminBody = { content: { 'application/json': { schema: { type: 'object', properties: { key: { type: 'string' }, model_id: { type: 'string' },
    model_type: { type: 'string' }, url: { type: 'string', description: 'http(s) URL or hub repository id' }, sha256: { type: 'string' } } } } } };
  for (const n of ENTERPRISE_ENDPOINTS) {
    for (const prefix of ['/api/v1/enterprise/', '/api/v1/enterprise/images/']) {
      if (n === 'update' && !prefix.endsWith('images/')) continue;
      paths[prefix + n] = { post: { summary: `Server management: ${n} (admin key)`, requestBody: adminBody, responses } };
    }
  }
  return {
    openapi: '3.1.0',
    info: { title: 'ControlNet API (ModelsLab-compatible)', version: VERSION },
    components: {
      schemas: { ControlNetRequest: body, Result: resultSchema, Error: errorSchema },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    },
    paths,
  };
}
