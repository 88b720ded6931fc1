import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { request } from "undici";
import { describe, expect, it } from "vitest";
import { afterAnswered } from "./answered.ts";

/** A real response object, held open until `release` is called. */
async function openResponse(): Promise<{
  res: ServerResponse;
  release(): void;
  close(): Promise<void>;
}> {
  let resolveRes: (r: ServerResponse) => void = () => {};
  const got = new Promise<ServerResponse>((r) => {
    resolveRes = r;
  });
  const server = createServer((_req, res) => resolveRes(res));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const answer = request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`).then((r) =>
    r.body.text(),
  );
  const res = await got;
  return {
    res,
    release: () => res.end("done"),
    async close() {
      await answer.catch(() => {});
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe("afterAnswered", () => {
  it("runs at once when there is nothing to wait for", () => {
    let ran = 0;
    afterAnswered([], () => ran++);
    expect(ran).toBe(1);
  });

  it("waits until every response is delivered, then runs once", async () => {
    const a = await openResponse();
    const b = await openResponse();
    let ran = 0;
    const done = new Promise<void>((resolve) =>
      afterAnswered(
        [a.res, b.res],
        () => {
          ran++;
          resolve();
        },
        60_000,
      ),
    );
    a.release();
    await new Promise((r) => a.res.once("close", r));
    expect(ran).toBe(0);
    b.release();
    await done;
    expect(ran).toBe(1);
    await a.close();
    await b.close();
  });

  it("a response never delivered does not hold it back past the grace", async () => {
    const a = await openResponse();
    let ran = 0;
    await new Promise<void>((resolve) =>
      afterAnswered(
        [a.res],
        () => {
          ran++;
          resolve();
        },
        10,
      ),
    );
    expect(ran).toBe(1);
    a.release();
    await a.close();
    expect(ran).toBe(1);
  });
});
