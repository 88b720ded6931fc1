// Builds the native tunnel relay (src/relay.c) into dist/egress-relay with the system C compiler
// ($CC or cc). Part of `pnpm build`. Without a compiler the build goes on and says so: the proxy
// then keeps plain tunnels in its JS relay (slower for bulk transfers) and warns once at run time.
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist", "egress-relay");
const cc = process.env.CC || "cc";
mkdirSync(dirname(out), { recursive: true });
try {
  execFileSync(cc, ["-O2", "-Wall", "-Wextra", "-o", out, join(root, "src", "relay.c")], {
    stdio: ["ignore", "inherit", "inherit"],
  });
} catch (error) {
  const why = error && error.code === "ENOENT" ? `no C compiler (${cc}) on PATH` : `${cc} failed`;
  process.stderr.write(
    `egress-proxy: native tunnel relay not built: ${why}. Plain CONNECT tunnels will use the JS relay.\n` +
      "  fix: install a C compiler (Debian: apt-get install build-essential) and run the build again\n",
  );
  process.exit(process.env.BOTTLEKIT_REQUIRE_NATIVE_RELAY === "1" ? 1 : 0);
}
