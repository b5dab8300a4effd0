import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { safeFetch, FetchError, type Resolver } from '../../src/inputs/safe-fetch.ts';
import { blockedReason } from '../../src/inputs/address.ts';

let server: http.Server;
let port = 0;
let connections = 0;

before(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/redirect-private') { res.writeHead(302, { location: `http://127.0.0.1:${port}/secret` }).end(); return; }
    if (req.url === '/redirect-file') { res.writeHead(302, { location: 'file:///etc/passwd' }).end(); return; }
    if (req.url === '/redirect-loop') { res.writeHead(302, { location: '/redirect-loop' }).end(); return; }
    if (req.url === '/big') { res.writeHead(200); res.end(Buffer.alloc(2048)); return; }
    if (req.url === '/big-chunked') { res.writeHead(200, { 'transfer-encoding': 'chunked' }); for (let i = 0; i < 8; i++) res.write(Buffer.alloc(512)); res.end(); return; }
    if (req.url === '/slow') { setTimeout(() => res.end('late'), 2000).unref(); return; }
    res.end('secret');
  });
  server.on('connection', () => { connections++; });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
after(() => { server.closeAllConnections(); server.close(); });

const refuses = async (url: string, opts: Parameters<typeof safeFetch>[1] = {}, kind: FetchError['kind'] = 'blocked') => {
  const before = connections;
  await assert.rejects(safeFetch(url, { timeoutMs: 2000, ...opts }), (e: unknown) => {
    assert.ok(e instanceof FetchError, String(e));
    assert.equal(e.kind, kind, `${url}: ${e.message}`);
    return true;
  });
  if (kind === 'blocked' || kind === 'url') assert.equal(connections, before, `${url} must not reach the server`);
};

const p = () => port;
const TRICKS: [string, () => string][] = [
  ['loopback', () => `http://127.0.0.1:${p()}/`],
  ['decimal IPv4', () => `http://2130706433:${p()}/`],
  ['octal IPv4', () => `http://0177.0.0.1:${p()}/`],
  ['hex IPv4', () => `http://0x7f.0.0.1:${p()}/`],
  ['hex dword IPv4', () => `http://0x7f000001:${p()}/`],
  ['short IPv4', () => `http://127.1:${p()}/`],
  ['IPv6 loopback', () => `http://[::1]:${p()}/`],
  ['IPv4-mapped IPv6 dotted', () => `http://[::ffff:127.0.0.1]:${p()}/`],
  ['IPv4-mapped IPv6 hex', () => `http://[::ffff:7f00:1]:${p()}/`],
  ['metadata IP', () => 'http://169.254.169.254/latest/meta-data/'],
  ['metadata IP decimal', () => 'http://2852039166/latest/meta-data/'],
  ['0.0.0.0', () => `http://0.0.0.0:${p()}/`],
  ['0 shorthand', () => `http://0:${p()}/`],
  ['IPv6 unspecified', () => `http://[::]:${p()}/`],
  ['private 10/8', () => 'http://10.0.0.1/'],
  ['private 172.16/12', () => 'http://172.16.5.4/'],
  ['private 192.168/16', () => 'http://192.168.1.1/'],
  ['CGNAT', () => 'http://100.64.0.1/'],
  ['multicast', () => 'http://224.0.0.1/'],
  ['broadcast', () => 'http://255.255.255.255/'],
  ['IPv6 ULA', () => 'http://[fd00::1]/'],
  ['IPv6 link-local', () => 'http://[fe80::1]/'],
  ['NAT64 to loopback', () => 'http://[64:ff9b::7f00:1]/'],
  ['6to4 to loopback', () => 'http://[2002:7f00:1::1]/'],
  ['localhost name', () => `http://localhost:${p()}/`],
  ['IPv4-mapped metadata IP', () => 'http://[::ffff:169.254.169.254]/'],
];

for (const [name, url] of TRICKS) {
  test(`refused: ${name}`, async () => { await refuses(url()); });
}

test('refused: a host name that resolves to 127.0.0.1', async () => {
  const resolver: Resolver = async () => ['127.0.0.1'];
  await refuses(`http://evil.example:${port}/`, { resolver });
});

test('refused: a name with one public and one private address', async () => {
  const resolver: Resolver = async () => ['93.184.216.34', '10.1.2.3'];
  await refuses(`http://mixed.example:${port}/`, { resolver });
});

test('refused: a redirect hop to 127.0.0.1 (the first host is allowlisted by name)', async () => {
  const resolver: Resolver = async () => ['127.0.0.1'];
  const before = connections;
  await assert.rejects(safeFetch(`http://redirector.test:${port}/redirect-private`, { allow: ['redirector.test'], resolver }),
    (e: unknown) => e instanceof FetchError && e.kind === 'blocked');
  assert.equal(connections, before + 1, 'only the first hop connects');
});

test('refused: a redirect to file://, other schemes and credentials', async () => {
  const resolver: Resolver = async () => ['127.0.0.1'];
  await assert.rejects(safeFetch(`http://redirector.test:${port}/redirect-file`, { allow: ['redirector.test'], resolver }), /scheme file: is not allowed/);
  await refuses('file:///etc/passwd', {}, 'url');
  await refuses('gopher://127.0.0.1:70/', {}, 'url');
  await refuses('ftp://example.com/x.png', {}, 'url');
  await refuses('http://user:pw@example.com/', {}, 'url');
});

test('allowlisted: 127.0.0.1 by address, connection pinned to the checked address', async () => {
  let calls = 0;
  const resolver: Resolver = async () => { calls++; return ['127.0.0.1']; };
  const r1 = await safeFetch(`http://127.0.0.1:${port}/`, { allow: ['127.0.0.0/8'] });
  assert.equal(r1.body.toString(), 'secret');
  const r2 = await safeFetch(`http://pinned.test:${port}/`, { allow: ['pinned.test'], resolver });
  assert.equal(r2.body.toString(), 'secret');
  assert.equal(calls, 1, 'the name is resolved once and the socket uses that answer');
});

test('redirect limit, size cap (declared and streamed) and timeout', async () => {
  const allow = ['127.0.0.1'];
  await refuses(`http://127.0.0.1:${port}/redirect-loop`, { allow, maxRedirects: 3 }, 'http');
  await refuses(`http://127.0.0.1:${port}/big`, { allow, maxBytes: 1024 }, 'too_large');
  await refuses(`http://127.0.0.1:${port}/big-chunked`, { allow, maxBytes: 1024 }, 'too_large');
  await refuses(`http://127.0.0.1:${port}/slow`, { allow, timeoutMs: 200 }, 'timeout');
});

test('public addresses pass the classifier', () => {
  assert.equal(blockedReason('93.184.216.34'), undefined);
  assert.equal(blockedReason('2606:4700::1111'), undefined);
  assert.equal(blockedReason('::ffff:93.184.216.34'), undefined);
  assert.notEqual(blockedReason('::ffff:10.0.0.1'), undefined);
});
