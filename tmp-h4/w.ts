import { Worker } from 'node:worker_threads';
const url = new URL('./w2.ts', import.meta.url);
const w = new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })`, { eval: true });
w.on('message', (m) => { console.log('msg', m); w.terminate(); });
w.on('error', (e) => console.log('err', e.message));
