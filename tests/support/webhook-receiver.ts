// A webhook receiver on loopback for the tests: counts the POSTs per track_id and answers each one only after
// `answerAfterMs`, so that a delivery stays in flight while other processes poll the outbox (a second sender would
// then be seen as a second count).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface WebhookReceiver {
  /** The URL to pass as a request's `webhook`. */
  url: string;
  /** POSTs received per track_id. */
  hooks: Map<string, number>;
  close(): void;
}

/** Starts the receiver on 127.0.0.1 on a free port. */
export async function startWebhookReceiver(answerAfterMs: number): Promise<WebhookReceiver> {
  const hooks = new Map<string, number>();
  const server = http.createServer((req, res) => {
    let b = '';
    req.on('data', (c) => (b += c));
    req.on('end', () => {
      const t = String(JSON.parse(b).track_id);
      hooks.set(t, (hooks.get(t) ?? 0) + 1);
      setTimeout(() => res.writeHead(200).end('ok'), answerAfterMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, hooks, close: () => server.close() };
}
