// POST the hint endpoints: the maps auto_hint would feed each requested ControlNet type (canny edges, depth, pose
// skeleton, ...), so users can see what was detected. Runs on this process's engine thread, synchronously.
import { randomInt, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { z } from 'zod';
import { KEY_SECURITY } from '../auth.ts';
import { ApiError } from '../errors.ts';
import { bodySchema, CONTROLNET_ENDPOINT, type ValidBody } from '../../request/schema.ts';
import { errorSchema } from '../responses.ts';
import { loadImage, InputError } from '../../inputs/image.ts';
import { failureOf } from '../../worker/worker.ts';
import { baseUrlOf, keyAndRateHook, resolveOr400 } from './generate.ts';

const hintResult = z.looseObject({
  status: z.literal('success'), generationTime: z.number(), output: z.array(z.string()).meta({ description: 'one hint map per ControlNet type (URL or base64 PNG)' }),
  meta: z.record(z.string(), z.unknown()),
}).meta({ id: 'HintResult' });

export const HINT_PATHS = ['/api/v6/images/controlnet/hint', '/api/v1/enterprise/hint', '/api/v1/enterprise/images/hint'];

export function registerHint(app: FastifyInstance, ctx: AppContext): void {
  for (const path of HINT_PATHS) {
    app.route({ method: 'POST', url: path,
      schema: { summary: 'The hint maps auto_hint would feed each ControlNet type (the generate body; no generation)', tags: ['ControlNet'],
        security: KEY_SECURITY, body: bodySchema(CONTROLNET_ENDPOINT, true), response: { 200: hintResult, '4xx': errorSchema, '5xx': errorSchema } },
      preValidation: keyAndRateHook(ctx),
      handler: async (req, reply) => {
      const r = resolveOr400(req.body as ValidBody, CONTROLNET_ENDPOINT, { denoising: false });
      if (!ctx.hint) throw new ApiError(503, 'this server runs no engine (serve --no-worker): send hint requests to a server that does');
      const limits = { maxBytes: ctx.config.maxInputBytes, maxPixels: ctx.config.maxInputPixels, fetch: ctx.fetch };
      const field = r.control_image ? 'control_image' : 'init_image';
      const started = performance.now();
      let pngs: Buffer[];
      try {
        const image = await loadImage(field, r.control_images[0]!, r.width, r.height, limits);
        const mask = r.mask_image ? await loadImage('mask_image', r.mask_image, r.width, r.height, limits) : undefined;
        pngs = await ctx.hint({ types: r.controlnet_model, image, mask, width: r.width, height: r.height, seed: r.seed ?? randomInt(0, 2 ** 32 - 1) });
      } catch (e) {
        if (e instanceof InputError) throw new ApiError(e.statusCode as 400 | 413, e.message);
        const f = failureOf(e);
        throw new ApiError(f.status as 400 | 422 | 500, f.message);
      }
      const prefix = randomUUID();
      const temp = r.temp === 'yes';
      const output: string[] = [];
      for (const [i, png] of pngs.entries()) {
        if (r.base64 === 'yes') {
          output.push(png.toString('base64'));
          continue;
        }
        const name = `${prefix}-hint-${r.controlnet_model[i]}.png`;
        await ctx.store.put(name, png, temp);
        output.push(ctx.store.link(baseUrlOf(ctx, req), name, { temp, expiresAt: Date.now() + ctx.config.tempLinkTtlMs }));
      }
      return reply.code(200).send({
        status: 'success', generationTime: Math.round((performance.now() - started) / 10) / 100, output,
        meta: { controlnet_model: r.controlnet_model.join(','), W: r.width, H: r.height, base64: r.base64, temp: r.temp },
      });
    } });
  }
}
