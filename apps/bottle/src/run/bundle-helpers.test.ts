import fs from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import vm from "node:vm";
import { afterAll, describe, expect, it } from "vitest";
import { OWNER_HELPERS } from "./bundle-helpers.ts";

const here = path.dirname(new URL(import.meta.url).pathname);
const workspaceRoot = path.join(here, "..", "..", "..", "..");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bk-bundle-helpers-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Helpers {
  dirOf(pkg: string): string;
  requireFrom(pkg: string, specifier: string): unknown;
}

/** The banner as the bundles run it: with a `require` made for a file in dist/. */
function helpers(): { helpers: Helpers; require: NodeJS.Require } {
  const require = createRequire(path.join(here, "..", "..", "dist", "bottle-run.cjs"));
  const make = vm.runInThisContext(
    `(function (require) {\n${OWNER_HELPERS}\nreturn { dirOf: __bottlekitDirOf, requireFrom: __bottlekitRequireFrom };\n})`,
  ) as (r: NodeJS.Require) => Helpers;
  return { helpers: make(require), require };
}

describe("the bundles' owner helpers", () => {
  it("find a library's real directory and load its native dependency right after a stat of a socket", async () => {
    const { helpers: h, require } = helpers();
    const socketPath = path.join(dir, "s.sock");
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    try {
      // The loader has resolved in node_modules/@bottlekit before (its realpath cache holds the
      // path's head), and the last stat of the process is a socket's: Node's realpath then
      // stops early and would hand back the symlinked path.
      require.resolve("@bottlekit/egress-proxy/package.json");
      expect(fs.statSync(socketPath).isSocket()).toBe(true);
      expect(h.dirOf("@bottlekit/approvals")).toBe(
        fs.realpathSync.native(path.join(workspaceRoot, "packages", "approvals")),
      );
      expect(fs.statSync(socketPath).isSocket()).toBe(true);
      const Database = h.requireFrom("@bottlekit/approvals", "better-sqlite3") as new (
        file: string,
      ) => { prepare(sql: string): { get(): unknown }; close(): void };
      const db = new Database(":memory:");
      expect(db.prepare("select 1 as x").get()).toEqual({ x: 1 });
      db.close();
    } finally {
      server.close();
    }
  });
});
