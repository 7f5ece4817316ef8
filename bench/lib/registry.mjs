// A local docker-registry (Debian's CNCF distribution) on a free 127.0.0.1 port, behind a
// small counting HTTP proxy: clients (both tools) talk to the proxy, which forwards every
// request unchanged (Host header included, so the registry's Location URLs point back at
// the proxy) and counts request-body bytes (uploads) and response-body bytes (downloads).
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { freePort, run } from './util.mjs';

export async function startRegistry(dir) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const data = join(dir, 'data');
  writeFileSync(
    join(dir, 'config.yml'),
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${data}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const direct = `127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode}): ${stderr}`);
    try {
      const res = await fetch(`http://${direct}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  const counters = { uploaded: 0, downloaded: 0, requests: 0 };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const proxy = http.createServer((req, res) => {
    counters.requests++;
    const up = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers, agent }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, ur.rawHeaders);
      ur.on('data', (c) => {
        counters.downloaded += c.length;
      });
      ur.pipe(res);
      ur.on('error', (e) => res.destroy(e));
    });
    up.on('error', (e) => {
      if (!res.headersSent) {
        res.writeHead(502);
        res.end(String(e));
      } else res.destroy(e);
    });
    req.on('data', (c) => {
      counters.uploaded += c.length;
    });
    req.pipe(up);
  });
  proxy.keepAliveTimeout = 30_000;
  const proxyPort = await freePort();
  await new Promise((resolve, reject) => {
    proxy.once('error', reject);
    proxy.listen(proxyPort, '127.0.0.1', resolve);
  });

  return {
    /** What the tools use: host:port of the counting proxy. */
    host: `127.0.0.1:${proxyPort}`,
    /** The registry itself (fixture pushes go here, uncounted). */
    direct,
    dir,
    data,
    counters,
    reset() {
      counters.uploaded = 0;
      counters.downloaded = 0;
      counters.requests = 0;
    },
    snapshot() {
      return { ...counters };
    },
    /** Bytes of the registry's storage (du -sb of its data directory). */
    async storageBytes() {
      const r = await run('du', ['-sb', data], { allowFail: true });
      return Number(r.stdout.split(/\s+/)[0]) || 0;
    },
    async stop() {
      await new Promise((r) => {
        proxy.close(() => r());
        proxy.closeAllConnections?.();
      });
      agent.destroy();
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
