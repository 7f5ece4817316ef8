import { describe, it, expect } from 'vitest';
import { cli } from './helpers/cli.js';

describe('help', () => {
  it.each([
    [['--help']],
    [['-h']],
    [['help']],
    [['build', '--help']],
    [['build', '--push', '-h']],
    [['plan', '--help']],
    [['merge', '--help']],
    [['dockerfile', '--help']],
  ])('oci-build %j prints the usage and exits 0', async (args) => {
    const r = await cli(args);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Usage:\n {2}oci-build build --config FILE/);
    expect(r.stderr).not.toMatch(/Unknown option/);
  });

  it('an unknown option is still bad usage (exit 2)', async () => {
    const r = await cli(['build', '--hlep']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Unknown option '--hlep'/);
  });
});
