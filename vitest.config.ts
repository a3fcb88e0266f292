import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(`./src/${p}`, import.meta.url));

export default defineConfig({
  resolve: {
    alias: [
      { find: /^bulwark$/, replacement: src('index.ts') },
      { find: /^bulwark\/testing$/, replacement: src('testing/index.ts') },
      { find: /^bulwark\/redis$/, replacement: src('redis/index.ts') },
      { find: /^bulwark\/durable$/, replacement: src('durable/index.ts') },
      { find: /^bulwark\/health$/, replacement: src('health/index.ts') },
      { find: /^bulwark\/metrics$/, replacement: src('metrics/index.ts') },
      { find: /^bulwark\/sync$/, replacement: src('sync/index.ts') },
      { find: /^bulwark\/server$/, replacement: src('server/index.ts') },
      { find: /^bulwark\/chaos$/, replacement: src('chaos/proxy/index.ts') },
      { find: /^bulwark\/gateway$/, replacement: src('gateway/index.ts') },
      { find: /^bulwark\/audit$/, replacement: src('audit/index.ts') },
      { find: /^bulwark\/export$/, replacement: src('export/index.ts') },
      { find: /^bulwark\/keyring$/, replacement: src('keyring/index.ts') },
      { find: /^bulwark\/postgres$/, replacement: src('postgres/index.ts') },
      { find: /^bulwark\/backup$/, replacement: src('backup/index.ts') },
    ],
  },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
