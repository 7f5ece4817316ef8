import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './registry.js';

/**
 * Azurite (Microsoft's Azure Blob Storage emulator, from npm) on a free loopback port, its
 * data in a temp dir. The Actions artifact and cache clients upload to and download from it
 * through the signed URLs the results-service stand-in hands out.
 */
export interface TestAzurite {
  /** The blob endpoint of the emulator's account, e.g. http://127.0.0.1:40123/devstoreaccount1 */
  url: string;
  account: string;
  /** The account key: public, the same in every Azurite (documented by Microsoft). */
  key: string;
  /** Stops the emulator, keeping its data (start() brings it back on the same port). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and removes its data. */
  dispose(): Promise<void>;
}

const ACCOUNT = 'devstoreaccount1';
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const MAIN = fileURLToPath(new URL('../../node_modules/azurite/dist/src/blob/main.js', import.meta.url));

export async function startAzurite(): Promise<TestAzurite> {
  const dir = mkdtempSync(join(tmpdir(), 'oci-build-azurite-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/${ACCOUNT}`;
  let child: ChildProcess | undefined;
  let stderr = '';

  async function start(): Promise<void> {
    // --skipApiVersionCheck: the clients' @azure/storage-blob may speak a newer REST API
    // version than this Azurite knows; the calls they make exist in older ones.
    child = spawn(
      process.execPath,
      [
        MAIN,
        '--blobHost',
        '127.0.0.1',
        '--blobPort',
        String(port),
        '--location',
        dir,
        '--silent',
        '--disableTelemetry',
        '--skipApiVersionCheck',
        '--loose',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`azurite exited (${child.exitCode}): ${stderr}`);
      try {
        // Any HTTP answer (403: no credentials) means it listens.
        const res = await fetch(`${url}?comp=list`);
        await res.arrayBuffer();
        return;
      } catch {
        /* not up yet */
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`azurite did not start on port ${port}: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function stop(): Promise<void> {
    const c = child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    if (c.exitCode === null) {
      c.kill('SIGKILL');
      await exited;
    }
  }

  await start();
  return {
    url,
    account: ACCOUNT,
    key: KEY,
    start,
    stop,
    async dispose() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
