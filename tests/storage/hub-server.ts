// A local HTTP server laid out like the model hub: /api/models/<repo> lists files, /<repo>/resolve/<rev>/<file>
// serves them with Range support. Records the requests it saw.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';

export interface HubFile { name: string; data: Buffer; lfs?: boolean; badSha?: boolean }

export async function startHub(repos: Record<string, HubFile[]>): Promise<{ url: string; requests: { url: string; range?: string }[]; close(): void }> {
  const requests: { url: string; range?: string }[] = [];
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(req.url!.split('?')[0]!);
    requests.push({ url, range: req.headers.range });
    const list = /^\/api\/models\/(.+)$/.exec(url);
    if (list) {
      const files = repos[list[1]!];
      if (!files) return void res.writeHead(404).end('{"error":"not found"}');
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: list[1], siblings: files.map((f) => ({
        rfilename: f.name, size: f.data.length,
        ...(f.lfs ? { lfs: { size: f.data.length, sha256: f.badSha ? 'f'.repeat(64) : createHash('sha256').update(f.data).digest('hex') } } : {}),
      })) }));
    }
    const m = /^\/(.+?\/.+?)\/resolve\/([^/]+)\/(.+)$/.exec(url);
    const f = m ? repos[m[1]!]?.find((x) => x.name === m[3]) : undefined;
    if (!f) return void res.writeHead(404).end();
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      if (start >= f.data.length) return void res.writeHead(416).end();
      res.writeHead(206, { 'content-range': `bytes ${start}-${f.data.length - 1}/${f.data.length}`, 'content-length': f.data.length - start });
      return void res.end(f.data.subarray(start));
    }
    res.writeHead(200, { 'content-length': f.data.length }).end(f.data);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, close: () => { server.closeAllConnections(); server.close(); } };
}
