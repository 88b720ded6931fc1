// One upstream exchange read through undici's dispatch API. `Pool.request` wraps every response
// in a Readable stream (plus an async resource, a promise per body read and nextTick hops in the
// stream machinery); profiled at c=64 that wrapping and its task-queue hops were ~7% of the
// gateway process's samples (README, Figures). The gateway needs much less: the status and
// headers, then either the whole body (JSON answers) or its chunks in order with backpressure
// (streams). This handler gives exactly that. Timeouts are the pool's (`headersTimeout`,
// `bodyTimeout`), errors are undici's own (same codes as before).
import type { IncomingHttpHeaders } from "node:http";
import type { Dispatcher, Pool } from "undici";

/** Bytes buffered from the upstream before it is paused, while a stream reader is behind. */
const HIGH_WATER = 64 * 1024;

/** The error an aborted exchange ends with (undici's code for an aborted request). */
export function abortedError(): Error {
  const e = new Error("the upstream request was aborted") as Error & { code: string };
  e.name = "AbortError";
  e.code = "UND_ERR_ABORTED";
  return e;
}

type Waiter = () => void;

/**
 * An upstream response: `statusCode` and `headers` once `send` resolves; the body through
 * `bytes()` (all of it) or `for await` (chunk by chunk; leaving the loop early aborts the
 * request). Chunks that arrived before an error are still delivered, then the error is thrown.
 * Cost per call: one object, one promise for the headers and one per wait for data.
 */
export class UpstreamExchange implements Dispatcher.DispatchHandler, AsyncIterable<Buffer> {
  statusCode = 0;
  headers: IncomingHttpHeaders = {};
  /** The exchange itself: read as `upstream.body` by the respond stages. */
  get body(): this {
    return this;
  }
  #controller: Dispatcher.DispatchController | undefined = undefined;
  #abortReason: Error | undefined = undefined;
  #started = false;
  #onStart: ((value: UpstreamExchange) => void) | undefined = undefined;
  #onStartError: ((error: Error) => void) | undefined = undefined;
  #chunks: Buffer[] = [];
  #head = 0;
  #queued = 0;
  #ended = false;
  #error: Error | undefined = undefined;
  #waiter: Waiter | undefined = undefined;
  /** `bytes()` is reading: buffer everything, never pause. */
  #collecting = false;

  /** Dispatches the request on `pool`; resolves with this exchange when the headers arrive. */
  send(pool: Pool, options: Dispatcher.DispatchOptions): Promise<UpstreamExchange> {
    return new Promise<UpstreamExchange>((resolve, reject) => {
      this.#onStart = resolve;
      this.#onStartError = reject;
      pool.dispatch(options, this);
    });
  }

  /** Aborts the exchange (client gone, bottle stopped): a pending `send` or read rejects. */
  abort(): void {
    if (this.#abortReason !== undefined || this.#ended || this.#error !== undefined) return;
    this.#abortReason = abortedError();
    // Not yet on a connection: undici aborts it when it gets one (onRequestStart).
    this.#controller?.abort(this.#abortReason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#abortReason !== undefined) controller.abort(this.#abortReason);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    // 1xx informational responses come before the real one.
    if (statusCode < 200) return;
    this.#controller = controller;
    this.statusCode = statusCode;
    this.headers = headers;
    this.#started = true;
    const resolve = this.#onStart;
    this.#onStart = undefined;
    this.#onStartError = undefined;
    resolve?.(this);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#queued += chunk.length;
    if (!this.#collecting && this.#queued >= HIGH_WATER) controller.pause();
    this.#wake();
  }

  onResponseEnd(): void {
    this.#ended = true;
    this.#wake();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.#ended || this.#error !== undefined) return;
    this.#error = error;
    if (!this.#started) {
      const reject = this.#onStartError;
      this.#onStart = undefined;
      this.#onStartError = undefined;
      reject?.(error);
      return;
    }
    this.#wake();
  }

  #wake(): void {
    const w = this.#waiter;
    if (w !== undefined) {
      this.#waiter = undefined;
      w();
    }
  }

  #wait(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#waiter = resolve;
    });
  }

  /** The whole body, once it has ended; rejects with the upstream's error. */
  async bytes(): Promise<Buffer> {
    this.#collecting = true;
    this.#controller?.resume();
    while (!this.#ended && this.#error === undefined) await this.#wait();
    if (this.#error !== undefined && !this.#ended) throw this.#error;
    const chunks = this.#head === 0 ? this.#chunks : this.#chunks.slice(this.#head);
    this.#chunks = [];
    this.#head = 0;
    return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, this.#queued);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    let done = false;
    try {
      for (;;) {
        if (this.#head < this.#chunks.length) {
          const chunk = this.#chunks[this.#head] as Buffer;
          this.#chunks[this.#head] = EMPTY;
          this.#head++;
          if (this.#head === this.#chunks.length) {
            this.#chunks.length = 0;
            this.#head = 0;
          }
          this.#queued -= chunk.length;
          if (this.#queued < HIGH_WATER / 2) this.#controller?.resume();
          yield chunk;
          continue;
        }
        if (this.#ended) {
          done = true;
          return;
        }
        if (this.#error !== undefined) {
          done = true;
          throw this.#error;
        }
        await this.#wait();
      }
    } finally {
      // Left early (break, or the reader threw): the rest is not wanted.
      if (!done) this.abort();
    }
  }
}

const EMPTY = Buffer.alloc(0);
