import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { CLI } from './helpers/cli.js';

// The machine's own node is older than the CLI needs (Debian 12 ships Node 18/20): the bundled
// CLI must say so in one line and exit 2, not fail inside the build with a TypeError.
const OLD_NODE = '/usr/bin/node';
const oldMajor = existsSync(OLD_NODE)
  ? Number(spawnSync(OLD_NODE, ['-p', 'process.versions.node.split(".")[0]']).stdout.toString().trim())
  : NaN;

describe('the CLI on an old Node', () => {
  it.skipIf(!(oldMajor < 22))('prints one line naming the version and exits 2', () => {
    for (const args of [['--help'], ['build', '--config', 'examples/basic/oci-build.yml'], ['plan', '--explain']]) {
      const r = spawnSync(OLD_NODE, [CLI, ...args], { encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^oci-build: needs Node\\.js 22 or later, but ${OLD_NODE} is Node ${oldMajor}\\.`));
    }
  });
});
