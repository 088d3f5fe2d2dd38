#!/usr/bin/env node
/**
 * The `edgelock` executable: runs the CLI and exits with its code. Kept apart from cli.ts so that
 * importing the package never has process-level side effects.
 */
import { main } from "./cli.ts";

process.exitCode = await main(process.argv.slice(2));
