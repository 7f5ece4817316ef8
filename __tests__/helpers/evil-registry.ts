import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createHash } from 'node:crypto';

/**
 * A loopback HTTP server that answers like a broken or hostile registry, for faults the real
 * registry cannot produce (HTML pages, garbage JSON, oversized manifests, foreign media types).
 */
export interface EvilRegistry {
  host: string;
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export async function startEvilRegistry(handler: Handler): Promise<EvilRegistry> {
  const server: Server = createServer((req, res) => {
    req.resume();
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export function sha(b: string | Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** Serves `/v2/` as a registry would and one manifest (any bytes, any media type) for every tag. */
export function manifestServer(body: Buffer | string, mediaType: string, blobs: Record<string, Buffer | string> = {}): Handler {
  return (req, res) => {
    const url = req.url ?? '';
    if (url === '/v2/') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    if (/\/manifests\//.test(url)) {
      res.writeHead(200, { 'content-type': mediaType, 'docker-content-digest': sha(body) }).end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const m = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url);
    if (m && blobs[m[1]!] !== undefined) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(blobs[m[1]!]);
      return;
    }
    res
      .writeHead(404, { 'content-type': 'application/json' })
      .end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown' }] }));
  };
}
