/**
 * GitHub artifact attestations: an in-toto statement signed with Sigstore keyless signing (the
 * workflow's OIDC token gets a short-lived Fulcio certificate; the signature is logged in Rekor
 * or time-stamped), through @actions/attest, and uploaded to the repository's attestations so
 * `gh attestation verify oci://IMAGE --owner OWNER` finds it. The Sigstore bundle is what gets
 * attached as the referrer then.
 */
import type { Statement } from './provenance.js';

// @actions/attest and @actions/github (Sigstore, Octokit, their HTTP stacks: about 4 MB of
// bundle) are imported when a job signs, not at start-up: every build would pay for compiling them.

export const SIGSTORE_BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';
/** The annotation GitHub's own attest actions put on bundle referrers. */
export const BUNDLE_PREDICATE_ANNOTATION = 'dev.sigstore.bundle.predicateType';

export const SIGNING_PERMISSIONS_NOTICE =
  'provenance and SBOM are attached unsigned: give the job the `id-token: write` and `attestations: write` permissions to sign them as GitHub artifact attestations';

export interface SigningSetup {
  /** GitHub token for the attestations API. */
  token: string;
  /** Which Sigstore: public-good (public repositories) or GitHub's (private); default by visibility. */
  sigstore?: 'public-good' | 'github';
  /** Upload to the repository's attestations (off in tests and dry runs). */
  upload: boolean;
}

/** The OIDC token endpoint exists only in jobs with `id-token: write`. */
export function oidcAvailable(env: Record<string, string | undefined>): boolean {
  return Boolean(env.ACTIONS_ID_TOKEN_REQUEST_URL && env.ACTIONS_ID_TOKEN_REQUEST_TOKEN);
}

export interface SignedStatement {
  mediaType: string;
  bundle: Buffer;
  attestationId?: string;
}

/**
 * Stores a bundle in the repository's attestations (what `gh attestation verify` reads); needs
 * `attestations: write`. Done after the image is pushed, so no attestation names an image that
 * never reached the registry.
 */
export async function uploadBundle(
  bundle: { mediaType?: string; verificationMaterial?: Record<string, unknown>; dsseEnvelope?: Record<string, unknown> },
  token: string,
): Promise<string | undefined> {
  // Read at call time (the library's context reads the environment once, at import).
  const github = await import('@actions/github');
  const octokit = github.getOctokit(token, { baseUrl: process.env.GITHUB_API_URL || 'https://api.github.com' });
  const [owner, repo] = (process.env.GITHUB_REPOSITORY ?? '').split('/');
  if (!owner || !repo) throw new Error('GITHUB_REPOSITORY is not set');
  const res = await octokit.request('POST /repos/{owner}/{repo}/attestations', { owner, repo, bundle });
  return (res.data as { id?: string | number } | undefined)?.id?.toString();
}

export async function signStatement(st: Statement, s: SigningSetup): Promise<SignedStatement> {
  const { attest } = await import('@actions/attest');
  const r = await attest({
    subjects: st.subject,
    predicateType: st.predicateType,
    predicate: st.predicate,
    token: s.token,
    ...(s.sigstore ? { sigstore: s.sigstore } : {}),
    skipWrite: !s.upload,
  });
  const mediaType = typeof r.bundle.mediaType === 'string' && r.bundle.mediaType ? r.bundle.mediaType : SIGSTORE_BUNDLE_V03;
  return { mediaType, bundle: Buffer.from(JSON.stringify(r.bundle)), ...(r.attestationID ? { attestationId: r.attestationID } : {}) };
}
