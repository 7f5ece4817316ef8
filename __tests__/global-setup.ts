import { execFileSync } from 'node:child_process';

/** The end-to-end tests run the bundled action and CLI from dist/, as users do: build it first. */
export default function setup(): void {
  execFileSync(process.execPath, ['build.mjs'], { stdio: 'inherit' });
}
