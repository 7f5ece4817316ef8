/**
 * A fault-injecting HTTP proxy in front of a real registry (node:http on a free loopback port).
 *
 * Every request is forwarded to the upstream registry unless a rule matching it (method, regex on
 * path + query, nth occurrence, how many times) says otherwise. `Location` headers pointing at
 * the upstream are rewritten to the proxy so upload sessions come back through it. Every request
 * is recorded: method, path, whether it carried Authorization (and the value, for leak checks),
 * the status returned, the fault applied and the request body bytes received.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';

export type Fault =
  /** Answer with this status (and optional headers/body) without forwarding. */
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: unknown }
  /**
   * Reset the connection (TCP RST) before any response. `afterRequestBytes`: once that many body
   * bytes arrived (default: the whole body). `forward`: after the upstream handled the request
   * (the registry did the work, the client never hears of it).
   */
  | { kind: 'reset'; afterRequestBytes?: number; forward?: boolean }
  /** Forward; send the headers and `afterBytes` of the body, then reset the connection. */
  | { kind: 'reset-body'; afterBytes: number }
  /** Forward; send the headers and `bytes` of the body, then close the connection cleanly (FIN). */
  | { kind: 'truncate'; bytes: number }
  /** Forward; hold the response headers back for `ms`. */
  | { kind: 'delay-headers'; ms: number }
  /** Forward; send the headers and `afterBytes` of the body, then stall for `ms`. */
  | { kind: 'delay-body'; ms: number; afterBytes?: number }
  /** Forward; replace Docker-Content-Digest in the response. */
  | { kind: 'wrong-digest'; digest?: string }
  /** Forward; flip one byte of the response body (same length). */
  | { kind: 'corrupt-body' }
  /** Forward; drop response headers. */
  | { kind: 'strip-header'; name: string | string[] }
  /** Answer 307 to `to` + the request path, with a pre-signed-looking query. */
  | { kind: 'redirect'; to: string; status?: number };

export interface Rule {
  /** Shown in records and logs. */
  name?: string;
  method?: string;
  /** Tested against path + query. */
  path?: RegExp;
  /** 1-based occurrence among matching requests at which the fault starts (default 1). */
  nth?: number;
  /** How many matching requests get the fault from then on (default 1; Infinity: all). */
  count?: number;
  /** Only requests that carry Authorization match (skips the anonymous first contact). */
  authorized?: boolean;
  /** Further condition on the request headers. */
  when?: (headers: IncomingHttpHeaders) => boolean;
  fault: Fault;
}

export interface ProxyRecord {
  method: string;
  /** Path + query as received. */
  path: string;
  auth: boolean;
  /** The Authorization header received (tests check what went where). */
  authorization?: string;
  range?: string;
  /** Status sent to the client (0: none, the connection was cut). */
  status: number;
  /** Name (or kind) of the fault applied, if any. */
  fault?: string;
  /** Request body bytes received from the client. */
  requestBytes: number;
  at: number;
}

interface LiveRule extends Rule {
  matched: number;
  applied: number;
}

export interface FaultProxy {
  host: string;
  url: string;
  requests: ProxyRecord[];
  /** Adds a rule; returns a handle with how often it fired. */
  add(rule: Rule): { readonly applied: number; readonly matched: number };
  /** Removes every rule and forgets the records. */
  reset(): void;
  close(): Promise<void>;
}

export const WRONG_DIGEST = `sha256:${createHash('sha256').update('not the blob you sent').digest('hex')}`;

function errorBody(status: number): unknown {
  const code = status === 429 ? 'TOOMANYREQUESTS' : status === 503 ? 'UNAVAILABLE' : status >= 500 ? 'UNKNOWN' : 'DENIED';
  return { errors: [{ code, message: `injected ${status}` }] };
}

/** A node:http server that tracks its sockets so close() never waits on keep-alive clients. */
async function listen(server: Server): Promise<{ host: string; url: string }> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { host: `127.0.0.1:${port}`, url: `http://127.0.0.1:${port}` };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((r) => {
    server.closeAllConnections();
    server.close(() => r());
  });
}

function rst(socket: Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

export async function startFaultProxy(upstream: string /* host:port */): Promise<FaultProxy> {
  const upstreamOrigin = `http://${upstream}`;
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const rules: LiveRule[] = [];
  const requests: ProxyRecord[] = [];
  let self = '';

  function pick(method: string, path: string, headers: IncomingHttpHeaders): LiveRule | undefined {
    let chosen: LiveRule | undefined;
    for (const r of rules) {
      if (r.method && r.method !== method) continue;
      if (r.path && !r.path.test(path)) continue;
      if (r.authorized && !headers.authorization) continue;
      if (r.when && !r.when(headers)) continue;
      r.matched++;
      if (!chosen && r.matched >= (r.nth ?? 1) && r.applied < (r.count ?? 1)) chosen = r;
    }
    if (chosen) chosen.applied++;
    return chosen;
  }

  function rewriteHeaders(h: IncomingHttpHeaders): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = { ...h };
    const loc = h.location;
    if (typeof loc === 'string' && loc.startsWith(upstreamOrigin)) out.location = self + loc.slice(upstreamOrigin.length);
    delete out.connection;
    delete out['keep-alive'];
    return out;
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const rule = pick(method, path, req.headers);
    const fault = rule?.fault;
    const rec: ProxyRecord = {
      method,
      path,
      auth: !!req.headers.authorization,
      status: 0,
      requestBytes: 0,
      at: Date.now(),
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      ...(typeof req.headers.range === 'string' ? { range: req.headers.range } : {}),
      ...(rule ? { fault: rule.name ?? rule.fault.kind } : {}),
    };
    requests.push(rec);
    req.on('data', (c: Buffer) => {
      rec.requestBytes += c.length;
    });
    res.on('error', () => {});
    req.on('error', () => {});
    const socket = req.socket;
    const send = (status: number, headers: OutgoingHttpHeaders, body?: Buffer | string) => {
      rec.status = status;
      if (res.destroyed) return;
      res.writeHead(status, headers);
      res.end(body);
    };

    if (fault?.kind === 'status') {
      req.resume();
      req.on('end', () => {
        const body = Buffer.from(JSON.stringify(fault.body ?? errorBody(fault.status)));
        send(
          fault.status,
          { 'content-type': 'application/json', 'content-length': String(body.length), ...fault.headers },
          method === 'HEAD' ? undefined : body,
        );
      });
      return;
    }
    if (fault?.kind === 'redirect') {
      req.resume();
      req.on('end', () =>
        send(fault.status ?? 307, {
          location: `${fault.to}${path.split('?')[0]}?X-Amz-Signature=presigned-secret&X-Amz-Expires=300`,
          'content-length': '0',
        }),
      );
      return;
    }
    if (fault?.kind === 'reset' && !fault.forward) {
      const limit = fault.afterRequestBytes;
      if (limit !== undefined) {
        req.on('data', () => {
          if (rec.requestBytes >= limit) rst(socket);
        });
      }
      req.on('end', () => rst(socket));
      req.resume();
      return;
    }

    // Forward to the registry.
    const headers: OutgoingHttpHeaders = { ...req.headers, host: upstream };
    delete headers.connection;
    delete headers['keep-alive'];
    const up = httpRequest({ host: '127.0.0.1', port: Number(upstream.split(':')[1]), method, path, headers, agent }, (ur) => {
      if (fault?.kind === 'reset' && fault.forward) {
        ur.resume();
        ur.on('end', () => rst(socket));
        return;
      }
      const status = ur.statusCode ?? 502;
      const h = rewriteHeaders(ur.headers);
      if (fault?.kind === 'wrong-digest') h['docker-content-digest'] = fault.digest ?? WRONG_DIGEST;
      if (fault?.kind === 'strip-header') for (const n of [fault.name].flat()) delete h[n.toLowerCase()];
      const start = () => {
        rec.status = status;
        if (res.destroyed || socket.destroyed) {
          ur.destroy();
          return;
        }
        res.writeHead(status, h);
        if (fault?.kind === 'reset-body' || fault?.kind === 'truncate' || fault?.kind === 'delay-body') {
          const cut = fault.kind === 'truncate' ? fault.bytes : (fault.afterBytes ?? 0);
          let sent = 0;
          let fired = false;
          const onData = (c: Buffer) => {
            if (sent + c.length < cut) {
              sent += c.length;
              res.write(c);
              return;
            }
            fired = true;
            const head = c.subarray(0, cut - sent);
            const rest = c.subarray(cut - sent);
            if (head.length) res.write(head);
            sent = cut;
            ur.pause();
            ur.off('data', onData);
            if (fault.kind === 'reset-body') {
              ur.destroy();
              setTimeout(() => rst(socket), 50);
              return;
            }
            if (fault.kind === 'truncate') {
              ur.destroy();
              setTimeout(() => socket.end(), 50);
              return;
            }
            setTimeout(() => {
              if (res.destroyed) {
                ur.destroy();
                return;
              }
              if (rest.length) res.write(rest);
              ur.pipe(res);
              ur.resume();
            }, fault.ms);
          };
          ur.on('data', onData);
          ur.on('end', () => {
            if (!fired) res.end();
          });
          return;
        }
        if (fault?.kind === 'corrupt-body') {
          let first = true;
          ur.on('data', (c: Buffer) => {
            if (first && c.length) {
              const copy = Buffer.from(c);
              copy[0] = copy[0]! ^ 0xff;
              res.write(copy);
              first = false;
              return;
            }
            res.write(c);
          });
          ur.on('end', () => res.end());
          return;
        }
        ur.pipe(res);
      };
      if (fault?.kind === 'delay-headers') setTimeout(start, fault.ms);
      else start();
    });
    up.on('error', () => {
      if (!res.headersSent) send(502, { 'content-type': 'text/plain' }, 'proxy: upstream failed');
      else rst(socket);
    });
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  });
  server.keepAliveTimeout = 30_000;
  const { host, url } = await listen(server);
  self = url;
  return {
    host,
    url,
    requests,
    add(rule) {
      const live: LiveRule = { ...rule, matched: 0, applied: 0 };
      rules.push(live);
      return {
        get applied() {
          return live.applied;
        },
        get matched() {
          return live.matched;
        },
      };
    },
    reset() {
      rules.length = 0;
      requests.length = 0;
    },
    async close() {
      await closeServer(server);
      agent.destroy();
    },
  };
}

export interface SeenRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  at: number;
}

/**
 * A second origin standing in for a registry's blob storage (S3, a CDN): serves blobs straight
 * from a filesystem-backed registry's storage directory and records the headers it receives.
 */
export async function startBlobHost(registryDataDir: string): Promise<{ url: string; seen: SeenRequest[]; close(): Promise<void> }> {
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    seen.push({ method: req.method ?? 'GET', path, headers: req.headers, at: Date.now() });
    req.resume();
    const m = /\/blobs\/sha256:([a-f0-9]{64})$/.exec(path);
    const file = m ? join(registryDataDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', m[1]!.slice(0, 2), m[1]!, 'data') : '';
    if (!m || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    const size = statSync(file).size;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(file).pipe(res);
  });
  const { url } = await listen(server);
  return { url, seen, close: () => closeServer(server) };
}
