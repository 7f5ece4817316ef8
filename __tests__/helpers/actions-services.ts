import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import {
  BlobSASPermissions,
  BlobServiceClient,
  generateBlobSASQueryParameters,
  StorageSharedKeyCredential,
  type ContainerClient,
} from '@azure/storage-blob';
import type { TestAzurite } from './azurite.js';

/**
 * A local stand-in for the GitHub Actions results service: the twirp endpoints that
 * @actions/artifact (ArtifactService) and @actions/cache (CacheService, v2) call, with the
 * bytes themselves in Azurite behind short-lived SAS URLs, as on GitHub. It keeps what the
 * real service keeps (artifacts per workflow run, finalized only once their blob is there;
 * cache entries by key and version, looked up by exact key then by restore-key prefix, newest
 * first), checks the bearer token it issued, and can be told to fail a method.
 */

const ARTIFACTS = 'github.actions.results.api.v1.ArtifactService';
const CACHE = 'github.actions.results.api.v1.CacheService';
const CONTAINER = 'actions-results';

export interface Artifact {
  id: number;
  runId: string;
  jobId: string;
  name: string;
  blob: string;
  size?: number;
  digest?: string;
  createdAt: string;
  finalized: boolean;
}

export interface CacheEntry {
  id: number;
  key: string;
  version: string;
  blob: string;
  size?: number;
  finalized: boolean;
  createdAt: number;
}

export interface Call {
  service: 'artifact' | 'cache';
  method: string;
  status: number;
}

export interface Job {
  runId: string;
  jobId: string;
  token: string;
}

export interface ActionsServices {
  url: string;
  artifacts: Artifact[];
  caches: CacheEntry[];
  calls: Call[];
  /** A job of a workflow run (a new run unless runId is given) and the runtime token it gets. */
  job(runId?: string): Job;
  /** The env a job step sees for the artifact and cache services. */
  env(job: Job): Record<string, string>;
  /** Answers `status` (a twirp error) to `method` from now on, until clearFaults(). */
  fail(method: string, status: number): void;
  clearFaults(): void;
  /** The bytes of a blob in Azurite (what was really uploaded). */
  blobBytes(blob: string): Promise<Buffer>;
  stop(): Promise<void>;
}

class TwirpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    msg: string,
  ) {
    super(msg);
  }
}

const TWIRP_CODES: Record<number, string> = {
  400: 'invalid_argument',
  401: 'unauthenticated',
  403: 'permission_denied',
  404: 'not_found',
  409: 'already_exists',
  500: 'internal',
  503: 'unavailable',
};

function b64url(s: string | Buffer): string {
  return Buffer.from(s).toString('base64url');
}

export async function startActionsServices(azurite: TestAzurite): Promise<ActionsServices> {
  const credential = new StorageSharedKeyCredential(azurite.account, azurite.key);
  const container: ContainerClient = new BlobServiceClient(azurite.url, credential).getContainerClient(CONTAINER);
  await container.createIfNotExists();
  // Tokens are HS256 JWTs signed with this secret; the clients only decode them (for the
  // scp claim), the stand-in verifies them.
  const secret = randomBytes(32);
  const artifacts: Artifact[] = [];
  const caches: CacheEntry[] = [];
  const calls: Call[] = [];
  const faults = new Map<string, number>();
  let nextId = 1000;

  function sign(payload: object): string {
    const head = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(payload))}`;
    return `${head}.${b64url(createHmac('sha256', secret).update(head).digest())}`;
  }

  /** The run and job a request's token was issued for; throws 401 on a missing or forged token. */
  function authorize(req: IncomingMessage): { runId: string; jobId: string } {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const parts = m ? m[1]!.split('.') : [];
    if (parts.length !== 3 || b64url(createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest()) !== parts[2]) {
      throw new TwirpError(401, 'unauthenticated', 'no valid runtime token');
    }
    const scp = String((JSON.parse(Buffer.from(parts[1]!, 'base64url').toString()) as { scp?: string }).scp);
    const ids = scp
      .split(' ')
      .map((s) => s.split(':'))
      .find((s) => s[0] === 'Actions.Results');
    if (!ids || ids.length !== 3) throw new TwirpError(401, 'unauthenticated', 'token has no Actions.Results scope');
    return { runId: ids[1]!, jobId: ids[2]! };
  }

  /** A SAS URL for one blob: create+write to upload, read to download, valid for an hour. */
  function sasUrl(blob: string, permissions: string): string {
    const sas = generateBlobSASQueryParameters(
      {
        containerName: CONTAINER,
        blobName: blob,
        permissions: BlobSASPermissions.parse(permissions),
        startsOn: new Date(Date.now() - 60_000),
        expiresOn: new Date(Date.now() + 3600_000),
      },
      credential,
    ).toString();
    return `${container.getBlockBlobClient(blob).url}?${sas}`;
  }

  /** The size of an uploaded blob, or a twirp error if the client never uploaded it. */
  async function uploadedSize(blob: string): Promise<number> {
    try {
      return (await container.getBlockBlobClient(blob).getProperties()).contentLength ?? 0;
    } catch {
      throw new TwirpError(400, 'failed_precondition', `nothing was uploaded to ${blob}`);
    }
  }

  function artifactJson(a: Artifact) {
    return {
      workflow_run_backend_id: a.runId,
      workflow_job_run_backend_id: a.jobId,
      database_id: String(a.id),
      name: a.name,
      size: String(a.size ?? 0),
      created_at: a.createdAt,
      ...(a.digest ? { digest: a.digest } : {}),
    };
  }

  type Body = Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : '');

  const artifactMethods: Record<string, (b: Body, who: { runId: string; jobId: string }) => Promise<object>> = {
    async CreateArtifact(b, who) {
      if (b.workflow_run_backend_id !== who.runId || b.workflow_job_run_backend_id !== who.jobId)
        throw new TwirpError(403, 'permission_denied', 'the token is for another job');
      const name = str(b.name);
      if (artifacts.some((a) => a.runId === who.runId && a.name === name && a.finalized)) {
        throw new TwirpError(409, 'already_exists', `an artifact with this name already exists on the workflow run`);
      }
      const blob = `${who.runId}/${who.jobId}/${randomUUID()}/${name}.zip`;
      artifacts.push({
        id: nextId++,
        runId: who.runId,
        jobId: who.jobId,
        name,
        blob,
        createdAt: new Date().toISOString(),
        finalized: false,
      });
      return { ok: true, signed_upload_url: sasUrl(blob, 'cw') };
    },
    async FinalizeArtifact(b, who) {
      const a = artifacts.findLast((x) => x.runId === who.runId && x.jobId === who.jobId && x.name === b.name && !x.finalized);
      if (!a) throw new TwirpError(404, 'not_found', `no artifact ${str(b.name)} being uploaded`);
      const size = await uploadedSize(a.blob);
      if (String(size) !== String(b.size)) throw new TwirpError(400, 'invalid_argument', `size ${String(b.size)} given, ${size} uploaded`);
      Object.assign(a, { size, digest: str(b.hash) || undefined, finalized: true });
      return { ok: true, artifact_id: String(a.id) };
    },
    async ListArtifacts(b, who) {
      const nameFilter = b.name_filter === undefined ? undefined : str(b.name_filter);
      const idFilter = b.id_filter === undefined ? undefined : Number(b.id_filter);
      const list = artifacts.filter(
        (a) =>
          a.finalized &&
          a.runId === who.runId &&
          (nameFilter === undefined || a.name === nameFilter) &&
          (idFilter === undefined || a.id === idFilter),
      );
      return { artifacts: list.map(artifactJson) };
    },
    async GetSignedArtifactURL(b, who) {
      const a = artifacts.find((x) => x.finalized && x.runId === who.runId && x.name === b.name);
      if (!a) throw new TwirpError(404, 'not_found', `no artifact ${str(b.name)}`);
      return { signed_url: sasUrl(a.blob, 'r') };
    },
    async DeleteArtifact(b, who) {
      const i = artifacts.findIndex((x) => x.finalized && x.runId === who.runId && x.name === b.name);
      if (i < 0) throw new TwirpError(404, 'not_found', `no artifact ${str(b.name)}`);
      const [a] = artifacts.splice(i, 1);
      await container.getBlockBlobClient(a!.blob).deleteIfExists();
      return { ok: true, artifact_id: String(a!.id) };
    },
  };

  const cacheMethods: Record<string, (b: Body) => Promise<object>> = {
    async CreateCacheEntry(b) {
      const key = str(b.key);
      const version = str(b.version);
      // As GitHub: an entry is written once; a second save of the key is refused.
      if (caches.some((c) => c.key === key && c.version === version))
        throw new TwirpError(409, 'already_exists', 'cache entry with the same key, version, and scope already exists');
      const blob = `caches/${randomUUID()}`;
      caches.push({ id: nextId++, key, version, blob, finalized: false, createdAt: Date.now() });
      return { ok: true, signed_upload_url: sasUrl(blob, 'cw') };
    },
    async FinalizeCacheEntryUpload(b) {
      const c = caches.find((x) => x.key === b.key && x.version === b.version && !x.finalized);
      if (!c) throw new TwirpError(404, 'not_found', `no cache entry ${str(b.key)} being uploaded`);
      const size = await uploadedSize(c.blob);
      if (String(size) !== String(b.size_bytes))
        throw new TwirpError(400, 'invalid_argument', `size ${String(b.size_bytes)} given, ${size} uploaded`);
      Object.assign(c, { size, finalized: true });
      return { ok: true, entry_id: String(c.id) };
    },
    async GetCacheEntryDownloadURL(b) {
      const version = str(b.version);
      const usable = caches.filter((c) => c.finalized && c.version === version).sort((x, y) => y.createdAt - x.createdAt || y.id - x.id);
      const key = str(b.key);
      const restoreKeys = Array.isArray(b.restore_keys) ? b.restore_keys.map(str) : [];
      // The key exactly, then each restore key as a prefix (newest entry first).
      const hit = usable.find((c) => c.key === key) ?? restoreKeys.map((p) => usable.find((c) => c.key.startsWith(p))).find(Boolean);
      if (!hit) return { ok: false, signed_download_url: '', matched_key: '' };
      return { ok: true, signed_download_url: sasUrl(hit.blob, 'r'), matched_key: hit.key };
    },
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const m = /^\/twirp\/([\w.]+)\/(\w+)$/.exec(req.url ?? '');
    const service = m?.[1] === ARTIFACTS ? 'artifact' : m?.[1] === CACHE ? 'cache' : undefined;
    const method = m?.[2] ?? '';
    let status = 200;
    let out: object;
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      if (req.method !== 'POST' || !service) throw new TwirpError(404, 'bad_route', `no such route ${req.method} ${req.url}`);
      const fault = faults.get(method);
      if (fault) throw new TwirpError(fault, TWIRP_CODES[fault] ?? 'unknown', `injected failure of ${method}`);
      const who = authorize(req);
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as Body;
      const impl = service === 'artifact' ? artifactMethods[method] : cacheMethods[method];
      if (!impl) throw new TwirpError(404, 'bad_route', `no method ${method}`);
      out = await impl(body, who);
    } catch (e) {
      const t = e instanceof TwirpError ? e : new TwirpError(500, 'internal', (e as Error).message);
      status = t.status;
      out = { code: t.code, msg: t.message };
    }
    calls.push({ service: service ?? 'artifact', method, status });
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(out));
  }

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    artifacts,
    caches,
    calls,
    job(runId = randomUUID()) {
      const jobId = randomUUID();
      // The scopes a runner gives a job; the clients read the ids from Actions.Results.
      const scp = `Actions.ExampleScope Actions.Results:${runId}:${jobId}`;
      return { runId, jobId, token: sign({ scp, exp: Math.floor(Date.now() / 1000) + 3600 }) };
    },
    env(job) {
      return {
        ACTIONS_RUNTIME_TOKEN: job.token,
        ACTIONS_RESULTS_URL: `${url}/`,
        ACTIONS_CACHE_URL: `${url}/`,
        ACTIONS_CACHE_SERVICE_V2: 'True',
        GITHUB_SERVER_URL: 'https://github.com',
      };
    },
    fail(method, status) {
      faults.set(method, status);
    },
    clearFaults() {
      faults.clear();
    },
    async blobBytes(blob) {
      return await container.getBlockBlobClient(blob).downloadToBuffer();
    },
    async stop() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
