/** What a registry failure looks like to {@link explainRegistryError} (a RegistryError fits). */
export interface RegistryFailure {
  status?: number;
  /** Registry error codes (DENIED, UNAUTHORIZED, ...). */
  codes: string[];
  message: string;
  registry: string;
}

const PERMISSIONS = 'give the job `permissions: packages: write` (and `contents: read`) in the workflow';
const ACTIONS_ACCESS = (registry: string) =>
  `if the package already exists, open it on GitHub (your profile or organization → Packages → the package → Package settings), and under "Manage Actions access" add this repository with the Write role (and "Connect repository" so ${registry} links it)`;

/**
 * A plain remedy for registry failures whose cause is a setting, not a bug: GHCR's permission
 * errors above all. Undefined when there is nothing better to say than the error itself.
 */
export function explainRegistryError(err: RegistryFailure): string | undefined {
  const msg = err.message.toLowerCase();
  const codes = err.codes.map((c) => c.toUpperCase());
  const ghcr = /(^|\.)ghcr\.io$/i.test(err.registry.replace(/:\d+$/, ''));
  const denied = err.status === 403 || codes.includes('DENIED');
  const unauthorized = err.status === 401 || codes.includes('UNAUTHORIZED');

  if (ghcr) {
    if (msg.includes('not allowed to create organization package')) {
      return [
        `${err.registry} refused to create a new organization package for this token.`,
        `Fix: ${PERMISSIONS};`,
        'in the organization settings → Actions → General → Workflow permissions, allow "Read and write permissions" (and in the repository settings too);',
        'in the organization settings → Packages → Package creation, allow the visibility the package will have (public / private / internal);',
        'a GitHub App installation token cannot create organization packages: log in with `${{ github.token }}` (the default registry-password) instead.',
      ].join(' ');
    }
    if (msg.includes('not allowed to write organization package') || msg.includes('write_package') || msg.includes('permission_denied')) {
      return [
        `${err.registry} refused to write to the package with this token.`,
        `Fix: ${PERMISSIONS};`,
        `${ACTIONS_ACCESS(err.registry)};`,
        'with a personal access token, it needs the write:packages scope.',
      ].join(' ');
    }
    if (denied) {
      return [
        `${err.registry} denied the push.`,
        `Fix: ${PERMISSIONS} (pull requests from forks get a read-only token and cannot push);`,
        `${ACTIONS_ACCESS(err.registry)};`,
        'check that the image name is ghcr.io/<owner>/<name> with the owner this repository belongs to, in lowercase.',
      ].join(' ');
    }
    if (unauthorized) {
      return [
        `${err.registry} did not accept the credentials.`,
        'Fix: leave registry-username / registry-password at their defaults (`${{ github.actor }}` / `${{ github.token }}`), or give a token that is valid for ghcr.io;',
        `${PERMISSIONS}.`,
      ].join(' ');
    }
    return undefined;
  }
  if (unauthorized) {
    return `${err.registry} did not accept the credentials. Fix: set registry: ${err.registry} with registry-username / registry-password (e.g. from secrets), or log in with docker login before this step.`;
  }
  if (denied) {
    return `${err.registry} denied access. Fix: check that the credentials for ${err.registry} may push to this repository, and that the image name is right.`;
  }
  return undefined;
}
