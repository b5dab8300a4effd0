// POST the hint endpoints: the maps auto_hint would feed each requested ControlNet type (canny edges, depth, pose
// skeleton, ...), so users can see what was detected. Runs on this process's engine thread, synchronously.
import { randomInt, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { authenticate } from '../auth.ts';
import { ApiError } from '../errors.ts';
import { parseRequest, ValidationError } from '../../request/schema.ts';
import { loadImage, InputError } from '../../inputs/image.ts';
import { failureOf } from '../../worker/worker.ts';
import { baseUrlOf } from './generate.ts';

export const HINT_PATHS = ['/api/v6/images/controlnet/hint', '/api/v1/enterprise/hint', '/api/v1/enterprise/images/hint'];

export function registerHint(app: FastifyInstance, ctx: AppContext): void {
  for (const path of HINT_PATHS) {
    app.post(path, async (req, reply) => {
      const key = await authenticate(ctx.keys, req);
      const wait = await ctx.limiter.take(key.id);
      if (wait > 0) throw new ApiError(429, `rate limit exceeded: ${ctx.config.rateLimitPerMinute} requests per minute`, { retry_after: wait });
      let r;
      try {
        r = parseRequest(req.body);
      } catch (e) {
        if (e instanceof ValidationError) throw new ApiError(400, e.message);
        throw e;
      }
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
    });
  }
}
