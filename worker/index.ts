/**
 * The Worker entry: the Hono app (HTTP), the Workers RPC entrypoint for service bindings, the lock object
 * class the runtime instantiates per lock name, and the directory's shard class.
 */
import { app } from "./app.ts";

export { LockDirectory } from "../durable-objects/lock-directory.ts";
export { LockObject } from "../durable-objects/lock-object.ts";
export { EdgelockRpc } from "./rpc.ts";
export default app;
