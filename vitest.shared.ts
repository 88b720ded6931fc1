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
    // The JSON report feeds the closing "N passed, N failed" line of `npm test`.
    reporters: ["default", "json"],
    outputFile: { json: ".vitest-report.json" },
  },
});
