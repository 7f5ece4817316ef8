import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createHash, randomUUID } from 'node:crypto';

/**
 * An in-memory OCI 1.1 registry on loopback, just enough for pushes and the referrers API
 * (GET /v2/<name>/referrers/<digest>, with the OCI-Subject header on manifest PUTs). Every
 * request is recorded, so a test can tell which path a client took.
 */
export interface MemRegistry {
  host: string;
  requests: { method: string; path: string }[];
  manifests: Map<string, { mediaType: string; bytes: Buffer }>;
  tags: Map<string, string>;
  close(): Promise<void>;
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** referrers: true (the API), false (404, as distribution 2.8), 'forbidden' (an odd registry answering 403). */
export async function startMemRegistry(opts: { referrers: boolean | 'forbidden' }): Promise<MemRegistry> {
  const blobs = new Map<string, Buffer>();
  const uploads = new Map<string, Buffer[]>();
  const manifests = new Map<string, { mediaType: string; bytes: Buffer }>(); // digest -> manifest
  const tags = new Map<string, string>(); // name:tag -> digest
  const requests: { method: string; path: string }[] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const method = req.method ?? 'GET';
      requests.push({ method, path: url.pathname });
      const json = (status: number, doc: unknown, headers: Record<string, string> = {}) =>
        res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(doc));
      const notFound = (code: string) => json(404, { errors: [{ code, message: code.toLowerCase() }] });
      if (url.pathname === '/v2/') return json(200, {});
      let m = /^\/v2\/(.+)\/blobs\/uploads\/(.*)$/.exec(url.pathname);
      if (m) {
        const [, name, id] = m;
        if (method === 'POST') {
          const u = randomUUID();
          uploads.set(u, []);
          return res.writeHead(202, { location: `/v2/${name}/blobs/uploads/${u}` }).end();
        }
        const parts = uploads.get(id!);
        if (!parts) return notFound('BLOB_UPLOAD_UNKNOWN');
        parts.push(await body(req));
        if (method === 'PATCH') return res.writeHead(202, { location: `/v2/${name}/blobs/uploads/${id}` }).end();
        const data = Buffer.concat(parts);
        const digest = url.searchParams.get('digest')!;
        if (sha(data) !== digest) return json(400, { errors: [{ code: 'DIGEST_INVALID', message: 'digest' }] });
        blobs.set(digest, data);
        uploads.delete(id!);
        return res.writeHead(201, { 'docker-content-digest': digest, location: `/v2/${name}/blobs/${digest}` }).end();
      }
      m = /^\/v2\/(.+)\/(blobs|manifests|referrers)\/([^/]+)$/.exec(url.pathname);
      if (!m) return notFound('NAME_UNKNOWN');
      const [, name, kind, ref] = m;
      if (kind === 'blobs') {
        const b = blobs.get(ref!);
        if (!b) return notFound('BLOB_UNKNOWN');
        return res
          .writeHead(200, { 'content-length': String(b.length), 'docker-content-digest': ref! })
          .end(method === 'HEAD' ? undefined : b);
      }
      if (kind === 'referrers') {
        if (opts.referrers === 'forbidden') return json(403, { errors: [{ code: 'DENIED', message: 'denied' }] });
        if (!opts.referrers) return res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found');
        const list = [...manifests.entries()].flatMap(([digest, mf]) => {
          const doc = JSON.parse(mf.bytes.toString('utf8')) as {
            subject?: { digest: string };
            artifactType?: string;
            annotations?: Record<string, string>;
            config?: { mediaType: string };
          };
          if (doc.subject?.digest !== ref) return [];
          return [
            {
              mediaType: mf.mediaType,
              digest,
              size: mf.bytes.length,
              artifactType: doc.artifactType ?? doc.config?.mediaType,
              ...(doc.annotations ? { annotations: doc.annotations } : {}),
            },
          ];
        });
        return json(
          200,
          { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: list },
          { 'content-type': 'application/vnd.oci.image.index.v1+json' },
        );
      }
      if (method === 'PUT') {
        const bytes = await body(req);
        const digest = sha(bytes);
        manifests.set(digest, { mediaType: (req.headers['content-type'] ?? '').split(';')[0]!, bytes });
        if (!ref!.startsWith('sha256:')) tags.set(`${name}:${ref}`, digest);
        const subject = (JSON.parse(bytes.toString('utf8')) as { subject?: { digest: string } }).subject;
        return res
          .writeHead(201, {
            'docker-content-digest': digest,
            ...(subject && opts.referrers === true ? { 'oci-subject': subject.digest } : {}),
          })
          .end();
      }
      const digest = ref!.startsWith('sha256:') ? ref! : tags.get(`${name}:${ref}`);
      const mf = digest ? manifests.get(digest) : undefined;
      if (!mf) return notFound('MANIFEST_UNKNOWN');
      return res
        .writeHead(200, { 'content-type': mf.mediaType, 'content-length': String(mf.bytes.length), 'docker-content-digest': digest! })
        .end(method === 'HEAD' ? undefined : mf.bytes);
    })().catch((e: unknown) => {
      res.writeHead(500).end(String(e));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    requests,
    manifests,
    tags,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
