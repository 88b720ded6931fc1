import { defineConfig } from "vitest/config";

// Workspace packages resolve to their TypeScript sources through the custom
// "@bottlekit/source" export condition; published tarballs resolve to dist.
const conditions = ["@bottlekit/source", "module", "node", "import", "default"];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ["@bottlekit/source"] } },
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Hang guards only (no test asserts on elapsed time): e2e tests start real agent CLIs,
    // gateways and Postgres, which on a loaded 2-core machine can take well over 30 s.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    // The JSON report feeds the closing "N passed, N failed" line of `npm test`.
    reporters: ["default", "json"],
    outputFile: { json: ".vitest-report.json" },
  },
});
