/**
 * The Worker entry: the Hono app (HTTP), the Workers RPC entrypoint for service bindings, and the lock
 * object class the runtime instantiates per lock name.
 */
import { app } from "./app.ts";

export { LockObject } from "../durable-objects/lock-object.ts";
export { EdgelockRpc } from "./rpc.ts";
export default app;
