import type * as egressDlp from "@bottlekit/egress-dlp";
import { createRegistry } from "@bottlekit/provider-registry";
import { describe, expect, it, vi } from "vitest";
import { resolveConfig } from "./compose.ts";
import { createGatewayDlp } from "./dlp.ts";

// The real scanner, with its scan calls counted: the cache must save work, never a finding.
let scans = 0;
vi.mock("@bottlekit/egress-dlp", async (importOriginal) => {
  const real = await importOriginal<typeof egressDlp>();
  return {
    ...real,
    createScanner: (...args: Parameters<typeof real.createScanner>) => {
      const s = real.createScanner(...args);
      const scan = s.scan.bind(s);
      s.scan = (text: string, surface?: string) => {
        scans++;
        return scan(text, surface);
      };
      return s;
    },
  };
});

const KEY = "sk-proj-HEADERtestKEY0123456789abcdefABCDEF0123";

async function dlp() {
  const env = { OPENAI_API_KEY: KEY };
  const v = await resolveConfig({
    config: {
      model_providers: [
        { model: "openai/*", base_url: "http://127.0.0.1:9/v1", access_key: "$OPENAI_API_KEY" },
      ],
    },
    env,
  });
  if (v.value === undefined) throw new Error(v.errors.join("; "));
  return createGatewayDlp(v.value, env, createRegistry(v.registryInput));
}

const upstream = { origin: "http://127.0.0.1:9", path: "/v1/chat/completions" };
const sdkHeaders = {
  "user-agent": "OpenAI/JS 6.30.1",
  "x-stainless-lang": "js",
  "x-stainless-os": "Linux",
  "x-stainless-runtime-version": "v20.20.2",
};

describe("outbound DLP: header values already found clean are not scanned again", () => {
  it("scans each clean header once; the body every time", async () => {
    const d = await dlp();
    scans = 0;
    expect(d.outbound(sdkHeaders, '{"a":1}', undefined, upstream, "b").action).toBe("allow");
    const first = scans;
    expect(first).toBe(Object.keys(sdkHeaders).length + 1);
    for (let i = 0; i < 10; i++) d.outbound(sdkHeaders, '{"a":1}', undefined, upstream, "b");
    // Ten more calls: only the body is scanned.
    expect(scans - first).toBe(10);
  });

  it("a header carrying a secret is found on every call, never remembered as clean", async () => {
    const d = await dlp();
    const leaky = { ...sdkHeaders, "x-debug": `token ${KEY}` };
    for (let i = 0; i < 3; i++) {
      const v = d.outbound(leaky, '{"a":1}', undefined, upstream, "b");
      expect(v.action).toBe("block");
      expect(v.findings.some((f) => f.surface === "header:x-debug")).toBe(true);
    }
    // The same value under another name is scanned on its own (the key is name and value).
    const moved = d.outbound({ "x-other": `token ${KEY}` }, "{}", undefined, upstream, "b");
    expect(moved.action).toBe("block");
  });

  it("a changed value is scanned again", async () => {
    const d = await dlp();
    d.outbound({ "x-note": "hello" }, "{}", undefined, upstream, "b");
    const v = d.outbound({ "x-note": `hello ${KEY}` }, "{}", undefined, upstream, "b");
    expect(v.action).toBe("block");
  });
});
