import { defineConfig } from 'vitest/config';

/**
 * Two projects: `unit` (*.test.ts) needs no root, registry, podman, skopeo, buildah or
 * debootstrap and no dist/ (npm run test:unit); `integration` (*.itg.test.ts) runs the real
 * tools and the bundled CLI and action, so dist/ is built first. npm test runs both.
 */
export default defineConfig({
  test: {
    testTimeout: 180_000,
    hookTimeout: 300_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['__tests__/**/*.test.ts'], exclude: ['__tests__/**/*.itg.test.ts'] },
      },
      {
        extends: true,
        test: { name: 'integration', include: ['__tests__/**/*.itg.test.ts'], globalSetup: ['__tests__/global-setup.ts'] },
      },
    ],
  },
});
