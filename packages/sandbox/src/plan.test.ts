import { describe, expect, it } from "vitest";
import { isSandboxError } from "./errors.ts";
import { type HostFacts, planSandbox, type SandboxSpec } from "./plan.ts";

const host = (drop: boolean): HostFacts => ({
  bwrap: "/usr/bin/bwrap",
  node: "/usr/bin/node",
  account: drop
    ? { name: "bottlekit-agent", uid: 999, gid: 995, drop: true }
    : { name: "dev", uid: 1000, gid: 1000, drop: false },
  hostHome: "/home/dev",
  exists: (p) =>
    ["/home", "/root", "/home/dev", "/work/p/.git/hooks", "/work/p/secrets"].includes(p)
      ? "dir"
      : p === "/work/p/.env"
        ? "file"
        : "none",
});

const spec: SandboxSpec = {
  command: ["/bin/true"],
  projectDir: "/work/p",
  hostEnv: { PATH: "/usr/bin" },
};

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isSandboxError(e) ? `${e.code}: ${e.message}` : String(e);
  }
  return undefined;
}

describe("planSandbox", () => {
  it("builds both stages: namespaces, read-only root, tmpfs homes, writable project, filter on stage 2", () => {
    const plan = planSandbox(spec, host(false), "/tmp/run");
    const argv = plan.argv.join(" ");
    expect(plan.argv[0]).toBe("/usr/bin/bwrap");
    for (const flag of [
      "--unshare-user",
      "--unshare-pid",
      "--unshare-ipc",
      "--unshare-uts",
      "--unshare-net",
      "--die-with-parent",
      "--new-session",
    ]) {
      expect(plan.argv).toContain(flag);
    }
    expect(argv).toContain("--ro-bind / / --dev /dev --proc /proc");
    expect(argv).toContain("--tmpfs /tmp --tmpfs /run --tmpfs /home --tmpfs /root");
    expect(argv).toContain("--bind /work/p /work/p");
    expect(argv).not.toContain("--seccomp");
    expect(plan.inner.join(" ")).toContain("--seccomp 9");
    expect(plan.inner).toContain("--unshare-pid");
  });

  it("as root, drops to the agent account with setpriv before bwrap", () => {
    const plan = planSandbox(spec, host(true), "/tmp/run");
    expect(plan.argv.slice(0, 5)).toEqual([
      "setpriv",
      "--reuid=999",
      "--regid=995",
      "--init-groups",
      "--inh-caps=-all",
    ]);
    expect(plan.env["USER"]).toBe("bottlekit-agent");
  });

  it("hides paths (tmpfs for directories, /dev/null for files) and re-protects paths after the writable binds", () => {
    const plan = planSandbox(
      {
        ...spec,
        hidden: ["/work/p/secrets", "/work/p/.env", "/work/p/missing"],
        protect: ["/work/p/.git/hooks", "/work/p/.git/config"],
      },
      host(false),
      "/tmp/run",
    );
    const kinds = plan.binds.map((b) => `${b.kind} ${b.path}`);
    expect(kinds).toContain("tmpfs /work/p/secrets");
    expect(kinds).toContain("hide-file /work/p/.env");
    expect(kinds.join("\n")).not.toContain("/work/p/missing");
    expect(kinds.indexOf("ro /work/p/.git/hooks")).toBeGreaterThan(kinds.indexOf("rw /work/p"));
    expect(kinds.join("\n")).not.toContain(".git/config");
  });

  it("never probes a writable or scratch path for writes", () => {
    const plan = planSandbox({ ...spec, readWrite: ["/var/cache/x"] }, host(false), "/tmp/run");
    expect(plan.writeProbes).toContain("/etc");
    expect(plan.writeProbes).toContain("/work");
    for (const p of plan.writeProbes)
      expect(p.startsWith("/tmp") || p.startsWith("/home") || p === "/var/cache/x").toBe(false);
  });

  it("refuses bad specs with the key path and changes nothing", () => {
    expect(
      code(() => planSandbox({ ...spec, projectDir: "relative" }, host(false), "/tmp/run")),
    ).toMatch(/^E_INVALID_SPEC: projectDir: "relative" is not an absolute path/);
    expect(code(() => planSandbox({ ...spec, projectDir: "/" }, host(false), "/tmp/run"))).toMatch(
      /^E_INVALID_SPEC: projectDir: "\/" cannot be bound/,
    );
    expect(
      code(() => planSandbox({ ...spec, readOnly: ["/ok", "x"] }, host(false), "/tmp/run")),
    ).toMatch(/^E_INVALID_SPEC: readOnly\[1\]/);
    expect(code(() => planSandbox({ ...spec, command: [] }, host(false), "/tmp/run"))).toMatch(
      /^E_INVALID_SPEC: command/,
    );
    expect(
      code(() =>
        planSandbox({ ...spec, proxy: { socketPath: "/s", port: 70000 } }, host(false), "/tmp/run"),
      ),
    ).toMatch(/^E_INVALID_SPEC: proxy\.port/);
    expect(
      code(() => planSandbox({ ...spec, readWrite: ["/proc/sys"] }, host(false), "/tmp/run")),
    ).toMatch(/^E_INVALID_SPEC: \/proc\/sys: cannot be made writable/);
  });

  it("keeps env values out of argv", () => {
    const plan = planSandbox(
      { ...spec, env: { TOKEN_PLACEHOLDER: "bottlekit:resolve:env:GH_TOKEN" } },
      host(false),
      "/tmp/run",
    );
    expect([...plan.argv, ...plan.inner].join(" ")).not.toContain("bottlekit:resolve");
    expect(plan.env["TOKEN_PLACEHOLDER"]).toBe("bottlekit:resolve:env:GH_TOKEN");
  });
});
