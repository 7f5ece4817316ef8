import { Agent, request } from 'undici';
import type { VariantSpec } from '../config/model.js';
import { parseReference, registryBaseUrl } from '../oci/reference.js';

/**
 * The registries a build talks to, each asked once (`GET /v2/`) before any work: a host that does
 * not resolve, refuses the connection, fails TLS or does not answer fails the build there, named,
 * with what to check, instead of after the base scan or the layers are built. Any HTTP answer
 * counts (401 is the usual one: credentials are the registry client's business, later).
 */
export class RegistryUnreachable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryUnreachable';
  }
}

/** Why the build needs a registry: "push of variant x", "base of variant y". */
export interface RegistryUse {
  registry: string;
  why: string;
}

/** Registries of the bases (not scratch, not another variant) and, when pushing, of the images. */
export function registriesOf(variants: VariantSpec[], push: boolean): RegistryUse[] {
  const uses: RegistryUse[] = [];
  for (const v of variants) {
    if (v.from === undefined && v.base && v.base !== 'scratch')
      uses.push({ registry: parseReference(v.base).registry, why: `base ${v.base} of variant ${v.name}` });
    if (push && !v.stage && v.image)
      uses.push({ registry: parseReference(v.image, { repositoryOnly: true }).registry, why: `push of variant ${v.name} to ${v.image}` });
  }
  return uses;
}

const TIMEOUT_MS = 15_000;

function codeOf(err: unknown): string {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i++)
    if (typeof e.code === 'string') return e.code;
  return '';
}

/** What to check, by the error's code. */
function advice(code: string, url: string): string {
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name does not resolve: check its spelling, DNS and the network';
  if (code === 'ECONNREFUSED') return `the connection to ${url} was refused: check that the registry runs and the port`;
  if (/CERT|SSL|TLS|EPROTO/.test(code))
    return `TLS with ${url} failed (${code}): check the certificate (only localhost and 127.0.0.0/8 registries are spoken to over plain HTTP)`;
  if (code.includes('TIMEOUT') || code === 'ETIMEDOUT' || code === 'ABORT_ERR')
    return `no answer from ${url} in ${TIMEOUT_MS / 1000} s: check the network, a firewall or a proxy`;
  return `${url} could not be reached${code ? ` (${code})` : ''}: check the network, a firewall or a proxy`;
}

/** One request per registry, all at once; the first that cannot be reached fails the build. */
export async function checkRegistries(uses: RegistryUse[]): Promise<void> {
  const byHost = new Map<string, string[]>();
  for (const u of uses) byHost.set(u.registry, [...(byHost.get(u.registry) ?? []), u.why]);
  if (!byHost.size) return;
  const agent = new Agent({ connectTimeout: TIMEOUT_MS, headersTimeout: TIMEOUT_MS, bodyTimeout: TIMEOUT_MS });
  try {
    const failures = await Promise.all(
      [...byHost].map(async ([registry, whys]) => {
        const url = `${registryBaseUrl(registry)}/v2/`;
        try {
          const res = await request(url, { dispatcher: agent, signal: AbortSignal.timeout(TIMEOUT_MS) });
          await res.body.dump();
          return undefined;
        } catch (err) {
          return `registry ${registry} (needed for the ${whys.join(', ')}) is not reachable: ${advice(codeOf(err), url)}`;
        }
      }),
    );
    const first = failures.find((f) => f !== undefined);
    if (first) throw new RegistryUnreachable(`${first}; nothing was built or pushed, and no tag was moved`);
  } finally {
    await agent.close();
  }
}
