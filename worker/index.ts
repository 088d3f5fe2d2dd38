/** The Worker entry: the Hono app, and the lock object class the runtime instantiates per lock name. */
import { app } from "./app.ts";

export { LockObject } from "../durable-objects/lock-object.ts";
export default app;
