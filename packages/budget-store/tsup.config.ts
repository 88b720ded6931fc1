import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts", "src/settings-entry.ts"],
  format: ["esm"],
  dts: { entry: ["src/index.ts", "src/settings-entry.ts"] },
  clean: true,
  sourcemap: true,
  target: "node20",
  platform: "node",
});
