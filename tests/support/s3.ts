// A real S3-compatible server for the tests: moto's server mode (PyPI `moto[server]`, pinned), started on 127.0.0.1
// and a free port with authentication ON: after the first 3 requests (which create an IAM user, its access key and
// an s3:* policy), every request's SigV4 signature is checked against that key's secret, so a wrong secret fails.
// The venv is found at $MOTO_VENV or ~/.cache/cn-moto-venv, and created there (pip, from PyPI) when missing.
// Known limit of moto with authentication on: presigned (query-string) URLs are not verified (it answers 500),
// so presigned links are checked against botocore's presigner instead (tests/storage/s3.test.ts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './redis.ts';

export const MOTO_REQUIREMENT = 'moto[server]==5.2.5';

export function motoVenv(): string {
  const venv = process.env.MOTO_VENV ?? join(homedir(), '.cache', 'cn-moto-venv');
  if (!existsSync(join(venv, 'bin', 'moto_server'))) {
    const mk = spawnSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' });
    if (mk.status !== 0) throw new Error('python3 -m venv failed (apt-get install -y python3-venv)');
    const pip = spawnSync(join(venv, 'bin', 'pip'), ['install', '-q', MOTO_REQUIREMENT], { stdio: 'inherit' });
    if (pip.status !== 0) throw new Error(`pip install ${MOTO_REQUIREMENT} failed`);
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

export async function startS3(bucket = 'cn-outputs'): Promise<TestS3> {
  const venv = motoVenv();
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(join(venv, 'bin', 'moto_server'), ['-H', '127.0.0.1', '-p', String(port)],
    { env: { ...process.env, INITIAL_NO_AUTH_ACTION_COUNT: '3' }, stdio: 'ignore' });
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
  try {
    const iam = async (params: Record<string, string>) => {
      // The first 3 requests are not authenticated: the header only routes them to IAM.
      const res = await fetch(`${endpoint}/`, { method: 'POST', body: new URLSearchParams({ ...params, Version: '2010-05-08' }),
        headers: { authorization: 'AWS4-HMAC-SHA256 Credential=setup/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0' } });
      const text = await res.text();
      if (!res.ok) throw new Error(`moto IAM ${params.Action}: ${res.status} ${text.slice(0, 200)}`);
      return text;
    };
    for (let i = 0; ; i++) {
      try {
        await fetch(`${endpoint}/moto-api/`, { method: 'GET' }).then((r) => r.arrayBuffer());
        break;
      } catch {
        if (i > 200) throw new Error('moto_server did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    // The moto-api probe above is not an AWS action: the 3 unauthenticated actions are these.
    await iam({ Action: 'CreateUser', UserName: 'controlnet' });
    const key = await iam({ Action: 'CreateAccessKey', UserName: 'controlnet' });
    await iam({ Action: 'PutUserPolicy', UserName: 'controlnet', PolicyName: 's3-all',
      PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }] }) });
    const accessKeyId = /<AccessKeyId>([^<]+)</.exec(key)![1]!;
    const secretAccessKey = /<SecretAccessKey>([^<]+)</.exec(key)![1]!;
    const region = 'us-east-1';
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
