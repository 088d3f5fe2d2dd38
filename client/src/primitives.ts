/**
 * Thin, typed views of the server's other lock kinds: a counting semaphore (`limit`, `permits`) and a
 * read-write lock (`mode: "shared"`). They only fill in acquire options; the server enforces the rules.
 */
import type { AcquireOptions, EdgelockClient, WithLockOptions } from "./client.ts";
import type { Lease } from "./lease.ts";

type KindOptions = Omit<AcquireOptions, "mode" | "limit" | "permits">;
type KindLockOptions = Omit<WithLockOptions, "mode" | "limit" | "permits">;

/**
 * A counting semaphore: at most `limit` permits held at once. Every user of one name must agree on the
 * limit (the server answers `limit_mismatch` otherwise).
 *
 * @example
 * const pool = new Semaphore(client, "gpu-pool", 4);
 * await pool.withPermits(2, async (lease) => train(lease.signal), { wait: "10m" });
 */
export class Semaphore {
  readonly #client: EdgelockClient;
  readonly name: string;
  readonly limit: number;

  constructor(client: EdgelockClient, name: string, limit: number) {
    this.#client = client;
    this.name = name;
    this.limit = limit;
  }

  /** Takes `permits` (default 1) permits. */
  acquire(permits = 1, options: KindOptions = {}): Promise<Lease> {
    return this.#client.acquire(this.name, { ...options, limit: this.limit, permits });
  }

  /** Runs `fn` holding `permits` permits, renewed in the background; see `EdgelockClient.withLock`. */
  withPermits<T>(
    permits: number,
    fn: (lease: Lease) => Promise<T> | T,
    options: KindLockOptions = {},
  ): Promise<T> {
    return this.#client.withLock(this.name, fn, { ...options, limit: this.limit, permits });
  }
}

/**
 * A read-write lock: many readers (`shared`) or one writer (`exclusive`). Waiters are served in order, so
 * a queued writer is not starved by a stream of readers. A read lease cannot be upgraded.
 *
 * @example
 * const config = new ReadWriteLock(client, "config");
 * const value = await config.withRead(async () => loadConfig());
 */
export class ReadWriteLock {
  readonly #client: EdgelockClient;
  readonly name: string;

  constructor(client: EdgelockClient, name: string) {
    this.#client = client;
    this.name = name;
  }

  read(options: KindOptions = {}): Promise<Lease> {
    return this.#client.acquire(this.name, { ...options, mode: "shared" });
  }

  write(options: KindOptions = {}): Promise<Lease> {
    return this.#client.acquire(this.name, { ...options, mode: "exclusive" });
  }

  withRead<T>(fn: (lease: Lease) => Promise<T> | T, options: KindLockOptions = {}): Promise<T> {
    return this.#client.withLock(this.name, fn, { ...options, mode: "shared" });
  }

  withWrite<T>(fn: (lease: Lease) => Promise<T> | T, options: KindLockOptions = {}): Promise<T> {
    return this.#client.withLock(this.name, fn, { ...options, mode: "exclusive" });
  }
}
