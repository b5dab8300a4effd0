// One server process: the composition root (main/wire.ts) behind the fastify server.
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.ts';
import type { AppContext } from './context.ts';
import { buildServer } from './server.ts';
import { wire, type WireOptions } from '../main/wire.ts';
import type { JobWorker } from '../worker/worker.ts';

export { fetchOptions, linkSecret } from '../main/wire.ts';

export type AppOptions = WireOptions;

export interface App {
  ctx: AppContext;
  server: FastifyInstance;
  /** The job loop of this process, when it runs jobs. */
  readonly worker: JobWorker | undefined;
  /** Listens on config.host:config.port (port 0: any free port); returns the base URL. */
  listen(): Promise<string>;
  /** Graceful stop: no new requests, the running job handed back, the pool left, stores closed. */
  close(): Promise<void>;
}

export async function createApp(config: Config, opts: AppOptions = {}): Promise<App> {
  const w = await wire(config, opts);
  const server = buildServer(w.ctx);
  return {
    ctx: w.ctx, server,
    get worker() { return w.worker(); },
    async listen() {
      await server.listen({ host: config.host, port: config.port });
      const addr = server.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : config.port;
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      return `http://${host}:${port}`;
    },
    async close() {
      await server.close();
      await w.close();
    },
  };
}
