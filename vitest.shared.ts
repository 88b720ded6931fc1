import { defineConfig } from "vitest/config";

// Workspace packages resolve to their TypeScript sources through the custom
// "@bottlekit/source" export condition; published tarballs resolve to dist.
const conditions = ["@bottlekit/source", "module", "node", "import", "default"];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ["@bottlekit/source"] } },
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
  },
});
