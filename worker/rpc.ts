/**
 * The Workers RPC entrypoint of API v1, `EdgelockRpc`: a Worker with a service binding to it acquires,
 * renews, releases and inspects locks without HTTP or JSON. Every call is authenticated and authorized as
 * its HTTP route is (the API key is an argument: a binding carries no authority of its own, see
 * docs/security.md), checked with the same schemas, and runs the same operation (operations.ts). Refusals
 * come back as the route's problem body, as a value (`{ ok: false, problem }`), never as a thrown error.
 */
import { WorkerEntrypoint } from "cloudflare:workers";
import type {
  AcquireRequest,
  EdgelockRpcApi,
  Lease,
  LockView,
  ReleaseRequest,
  ReleaseResponse,
  RenewRequest,
  RpcCall,
  RpcResult,
} from "../client/src/protocol.ts";
import { authenticate, authorize, type Principal } from "./auth.ts";
import type { Permission } from "./keys.ts";
import { acquireLock, inspectLock, parseBody, releaseLock, renewLock } from "./operations.ts";
import { ProblemError, problemBody } from "./problem.ts";
import { acquireSchema, releaseSchema, renewSchema } from "./schemas.ts";

export class EdgelockRpc extends WorkerEntrypoint<Env> implements EdgelockRpcApi {
  acquire(call: RpcCall & { request: AcquireRequest }): Promise<RpcResult<Lease>> {
    return this.#run(call, "lock", (name, principal) =>
      acquireLock(this.env, name, principal.name, parseBody(acquireSchema, requestOf(call))),
    );
  }

  renew(call: RpcCall & { request: RenewRequest }): Promise<RpcResult<Lease>> {
    return this.#run(call, "lock", (name) =>
      renewLock(this.env, name, parseBody(renewSchema, requestOf(call))),
    );
  }

  release(call: RpcCall & { request: ReleaseRequest }): Promise<RpcResult<ReleaseResponse>> {
    return this.#run(call, "lock", (name) =>
      releaseLock(this.env, name, parseBody(releaseSchema, requestOf(call))),
    );
  }

  inspect(call: RpcCall & { after?: number }): Promise<RpcResult<LockView>> {
    return this.#run(call, "inspect", (name) => {
      const after: unknown = (call as { after?: unknown }).after ?? 0;
      return inspectLock(this.env, name, typeof after === "number" ? after : Number.NaN);
    });
  }

  /** Authenticates, authorizes and runs one call; every failure becomes a problem value. */
  async #run<T>(
    call: unknown,
    permission: Permission,
    operation: (name: string, principal: Principal) => Promise<T>,
  ): Promise<RpcResult<T>> {
    try {
      const { name, apiKey } = readCall(call);
      const principal = await authenticate(this.env, apiKey === undefined ? undefined : `Bearer ${apiKey}`);
      return { ok: true, value: await operation(authorize(principal, name, permission), principal) };
    } catch (err) {
      if (err instanceof ProblemError) return { ok: false, problem: err.body() };
      console.error("unhandled error in an RPC call:", err);
      return {
        ok: false,
        problem: problemBody(
          "internal",
          "the server failed to handle this call; it changed nothing it could not keep",
        ),
      };
    }
  }
}

/** The call's lock name and key, as far as they have the right types; their values are checked later. */
function readCall(call: unknown): { name: string; apiKey: string | undefined } {
  if (typeof call !== "object" || call === null) {
    throw new ProblemError("invalid_body", "an RPC call is one object: { name, apiKey, request }");
  }
  const { name, apiKey } = call as { name?: unknown; apiKey?: unknown };
  if (apiKey !== undefined && typeof apiKey !== "string") {
    throw new ProblemError("unauthorized", "apiKey must be a string: the API key");
  }
  return { name: typeof name === "string" ? name : "", apiKey };
}

function requestOf(call: unknown): unknown {
  return (call as { request?: unknown }).request;
}
