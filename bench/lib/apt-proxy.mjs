// A caching HTTP proxy on 127.0.0.1 for apt (S5): the first request for a URL goes to the
// Debian mirror and is kept under .bench/apt-cache; later ones are answered from there. The
// warm-up round fills it, so measured rounds of both tools install the same packages from
// this machine instead of timing the mirror. apt speaks plain HTTP to the mirror through
// `http_proxy`; nothing else is proxied (CONNECT is refused).
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';

export async function startAptProxy(cacheDir) {
  mkdirSync(cacheDir, { recursive: true });
  const counters = { hits: 0, misses: 0, bytesFromMirror: 0 };
  const server = http.createServer((req, res) => {
    let url;
    try {
      url = new URL(req.url);
    } catch {
      res.writeHead(400);
      res.end('absolute URL expected (use me as http_proxy)\n');
      return;
    }
    if (req.method !== 'GET' || url.protocol !== 'http:') {
      res.writeHead(405);
      res.end();
      return;
    }
    const file = join(cacheDir, createHash('sha256').update(url.href).digest('hex'));
    if (existsSync(file)) {
      counters.hits++;
      res.writeHead(200, { 'content-length': statSync(file).size });
      createReadStream(file).pipe(res);
      return;
    }
    counters.misses++;
    const up = http.get(url, { headers: { 'user-agent': req.headers['user-agent'] ?? 'apt' } }, (ur) => {
      if (ur.statusCode !== 200) {
        // Not kept: apt sees the mirror's answer (404 for a missing by-hash file, say).
        res.writeHead(ur.statusCode ?? 502, { 'content-type': ur.headers['content-type'] ?? 'text/plain' });
        ur.pipe(res);
        return;
      }
      const parts = [];
      ur.on('data', (c) => {
        parts.push(c);
        counters.bytesFromMirror += c.length;
      });
      ur.on('end', () => {
        const body = Buffer.concat(parts);
        const tmp = `${file}.${process.pid}.tmp`;
        writeFileSync(tmp, body);
        renameSync(tmp, file);
        res.writeHead(200, { 'content-length': body.length });
        res.end(body);
      });
      ur.on('error', (e) => res.destroy(e));
    });
    up.on('error', (e) => {
      if (!res.headersSent) {
        res.writeHead(502);
        res.end(String(e));
      } else res.destroy(e);
    });
  });
  server.on('connect', (_req, socket) => {
    socket.end('HTTP/1.1 405 Method Not Allowed\r\n\r\n');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    counters,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
