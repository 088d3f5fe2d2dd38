#!/usr/bin/env node
/**
 * The `edgelock` executable: runs the CLI and exits with its code. Kept apart from cli.ts so that
 * importing the package never has process-level side effects.
 */
import { main } from "./cli.ts";

/** Once the CLI is done, how long a socket still closing may keep the process before it exits anyway. */
const EXIT_GRACE_MS = 500;

const code = await main(process.argv.slice(2));
process.exitCode = code;
// A closed session's socket stays open until the server answers the close; a server that never does (local
// workerd does not) would hold the process for Node's close timeout, though the lock was freed at once.
// Unref'd: it fires only if something is still pending.
setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
