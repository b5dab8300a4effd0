// GET the playground: the page (/), its script and style (/playground/*), and the form description it is built
// from (/playground/form.json): the request body's JSON Schema (defaults, limits, enums) from the one request
// schema, plus which ControlNet types this server has installed and, for a demo default model, its example request.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { requestJsonSchema } from '../../request/schema.ts';
import { CONTROLNET_TYPES } from '../../engine/pipeline/types.ts';
import { HINT_PATHS } from './hint.ts';
import { PROGRESS_PATHS } from './progress.ts';
import { FETCH_ID_PATHS } from './fetch.ts';
import { CONTROLNET_PATHS } from './generate.ts';

const WEB = new URL('../../../web/', import.meta.url);

/** The page's files, read once at start: name → [content type, content]. */
const ASSETS: Record<string, string> = {
  'playground.js': 'text/javascript; charset=utf-8',
  'playground.css': 'text/css; charset=utf-8',
};

/** What the page builds its form from. `request` is the generate body's JSON Schema, as /openapi.json has it. */
export interface PlaygroundForm {
  request: Record<string, unknown>;
  controlnet_types: readonly string[];
  /** The ControlNet types with a model in this server's models folder (generate answers 422 for the others). */
  installed_controlnets: string[];
  default_model_id: string | null;
  /** The default model's example request when it is a demo that names one (its DEMO.json "example"): the page
   * starts from it, e.g. the shapes demo's prompt at its native 128x128. */
  example: DemoExample | null;
  endpoints: { generate: string; hint: string; fetch: string; progress: string };
}

export interface DemoExample { prompt: string; width: number; height: number }

/** The example in a demo model's DEMO.json (src/cli/demo-model.ts writes it), or null when there is none. */
export function demoExample(modelPath: string | undefined): DemoExample | null {
  if (!modelPath) return null;
  const f = join(modelPath, 'DEMO.json');
  if (!existsSync(f)) return null;
  try {
    const e = (JSON.parse(readFileSync(f, 'utf8')) as { example?: Partial<DemoExample> }).example;
    if (typeof e?.prompt === 'string' && Number.isInteger(e.width) && Number.isInteger(e.height)) return { prompt: e.prompt, width: e.width!, height: e.height! };
  } catch { /* an unreadable marker: no example */ }
  return null;
}

export function playgroundForm(ctx: AppContext): PlaygroundForm {
  const defaultId = ctx.defaultModelId();
  const { $schema: _drop, ...full } = requestJsonSchema();
  const request = { ...full, properties: Object.fromEntries(Object.entries((full.properties ?? {}) as Record<string, JsonSchema>).map(([k, v]) => [k, mainForm(v)])) };
  return {
    request,
    controlnet_types: CONTROLNET_TYPES,
    installed_controlnets: CONTROLNET_TYPES.filter((t) => ctx.models.installed('controlnet', t)),
    default_model_id: defaultId ?? null,
    example: defaultId ? demoExample(ctx.models.find('base', defaultId)) : null,
    endpoints: {
      generate: CONTROLNET_PATHS.find((p) => p.startsWith('/api/v6/'))!,
      hint: HINT_PATHS[0]!,
      fetch: FETCH_ID_PATHS[0]!.replace(':id', '{id}'),
      progress: PROGRESS_PATHS[0]!.replace(':id', '{id}'),
    },
  };
}

type JsonSchema = Record<string, unknown>;

/**
 * A field's main form for the page's inputs. The API accepts several forms of most fields (a number or the same
 * number as a string, "yes"/"no" or a boolean, null or "" for unset: an anyOf in the schema); the form offers the
 * first real one, with the field's own default and description kept. Applied to array items too.
 */
export function mainForm(p: JsonSchema): JsonSchema {
  let out = p;
  if (Array.isArray(p.anyOf)) {
    const { anyOf, ...rest } = p;
    const branches = anyOf as JsonSchema[];
    const main = branches.find((b) => b.type !== 'null' && b.const === undefined && !(b.type === 'string' && typeof b.pattern === 'string' && !b.enum)) ?? branches[0] ?? {};
    out = { ...main, ...rest };
  }
  // zod writes an unbounded integer's limit as the largest safe integer: no limit to show
  if (out.maximum === Number.MAX_SAFE_INTEGER) {
    const { maximum: _m, ...rest } = out;
    out = rest;
  }
  return out.items && typeof out.items === 'object' ? { ...out, items: mainForm(out.items as JsonSchema) } : out;
}

export function registerPlayground(app: FastifyInstance, ctx: AppContext): void {
  const page = readFileSync(new URL('index.html', WEB), 'utf8');
  const assets = Object.entries(ASSETS).map(([name, type]) => [name, type, readFileSync(new URL(name, WEB))] as const);
  // not API routes: kept out of /openapi.json
  const hide = { schema: { hide: true } };
  app.get('/', hide, async (_req, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(page));
  for (const [name, type, body] of assets) {
    app.get(`/playground/${name}`, hide, async (_req, reply) => reply.type(type).header('cache-control', 'no-cache').send(body));
  }
  app.get('/playground/form.json', hide, async () => playgroundForm(ctx));
}
