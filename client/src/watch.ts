/**
 * `client.watch(name)`: a lock's state as an async iterator, from the `state` frames of a session socket of
 * its own. For waiting until a lock is free, and for observing who holds it (etcd's `Observe`). A dropped
 * socket is reopened with back-off (its first state is the lock as it is then); breaking out of the loop, or
 * `return()`, closes the socket. It holds nothing, so it never affects the lock.
 */
import { ServiceError } from "./errors.ts";
import type { LockView } from "./protocol.ts";
import { backoffDelayMs, isRetryable, type ResolvedRetry, retryAfterMsOf, sleep } from "./retry.ts";
import { SessionConnection } from "./session-connection.ts";
import type { SocketOpener } from "./socket.ts";
import { isLockView } from "./wire.ts";

export interface WatchOptions {
  /** Ends the iteration (it then throws the signal's reason) and closes the socket. */
  signal?: AbortSignal | undefined;
}

export interface WatchHost {
  readonly opener: SocketOpener;
  readonly retry: ResolvedRetry;
  readonly requestTimeoutMs: number;
}

/**
 * The states of one lock, newest first to last: each `next()` gives the lock's state as it was last
 * pushed and not yet given. A consumer slower than the changes skips intermediate states, never the latest.
 *
 * @example
 * for await (const state of client.watch("deploy")) {
 *   if (!state.held) break; // free now; the socket closes
 * }
 */
export class LockWatch implements AsyncIterableIterator<LockView> {
  readonly name: string;
  readonly #host: WatchHost;
  readonly #signal: AbortSignal | undefined;
  #latest: LockView | null = null;
  #failure: { error: unknown } | null = null;
  #done = false;
  #started = false;
  #connection: SessionConnection | null = null;
  #wake: (() => void) | null = null;
  readonly #stop = new AbortController();

  /** @internal Made by `client.watch(name)`. */
  constructor(name: string, host: WatchHost, options: WatchOptions = {}) {
    this.name = name;
    this.#host = host;
    this.#signal = options.signal;
    if (options.signal?.aborted) this.#fail(options.signal.reason);
    options.signal?.addEventListener("abort", () => this.#fail(options.signal?.reason), { once: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<LockView>> {
    if (!this.#started) {
      this.#started = true;
      void this.#run();
    }
    for (;;) {
      if (this.#latest !== null) {
        const value = this.#latest;
        this.#latest = null;
        return { value, done: false };
      }
      if (this.#failure !== null) {
        const { error } = this.#failure;
        this.#failure = null;
        this.#done = true;
        throw error;
      }
      if (this.#done) return { value: undefined, done: true };
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /** Stops watching and closes the socket (what `break` in a `for await` calls). */
  async return(): Promise<IteratorResult<LockView>> {
    this.#finish();
    return { value: undefined, done: true };
  }

  #finish(): void {
    this.#done = true;
    this.#stop.abort();
    this.#connection?.close();
    this.#notify();
  }

  #fail(error: unknown): void {
    if (this.#done) return;
    this.#latest = null;
    this.#failure = { error };
    this.#finish();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** Keeps one socket watching; reopens it with back-off while failures are transient. */
  async #run(): Promise<void> {
    // Consecutive failures; a socket that delivered a state resets the count.
    let failures = 0;
    while (!this.#done) {
      let failure: unknown;
      try {
        const openedAt = Date.now();
        const ws = await this.#host.opener.open(this.name, this.#host.requestTimeoutMs, this.#stop.signal);
        const connection = new SessionConnection(ws, openedAt, {
          state: (view) => {
            if (!isLockView(view)) return;
            failures = 0;
            this.#latest = view;
            this.#notify();
          },
          closed: () => undefined,
        });
        this.#connection = connection;
        if (this.#done) connection.close();
        await connection.request({ type: "watch" }, () => undefined);
        const detail = await connection.whenEnded;
        failure = new ServiceError("network_error", `the watch's socket ended: ${detail}`);
      } catch (error) {
        failure = error;
      }
      if (this.#done) return;
      if (!isRetryable(failure) || failures >= this.#host.retry.retries) {
        this.#fail(failure);
        return;
      }
      await sleep(
        backoffDelayMs(failures, this.#host.retry, retryAfterMsOf(failure)),
        this.#stop.signal,
      ).catch(() => undefined);
      failures += 1;
    }
  }
}
