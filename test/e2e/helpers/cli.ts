/**
 * Runs the built CLI (`client/dist/bin.js`, built by the e2e global setup) as a real child process and
 * collects its exit code and output.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { CLI, REPO_ROOT } from "./build-client.ts";

export interface CliResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Options for Node itself, before the script (e.g. `--no-experimental-websocket`). */
  nodeArgs?: string[];
}

export function startCli(
  args: string[],
  env: Record<string, string>,
  options: CliOptions = {},
): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, ...args], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...withoutEdgelockVars(process.env), ...env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk) => {
    stdout += String(chunk);
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk) => {
    stderr += String(chunk);
  });
  const done = new Promise<CliResult>((resolve) => {
    child.on("exit", (code, signal) => {
      // Let the pipes drain before reporting.
      setTimeout(() => resolve({ code, signal, stdout, stderr }), 20);
    });
  });
  return { child, done };
}

export function runCli(
  args: string[],
  env: Record<string, string>,
  options: CliOptions = {},
): Promise<CliResult> {
  return startCli(args, env, options).done;
}

/** The test runner's environment minus EDGELOCK_*, so only what a test passes reaches the CLI. */
function withoutEdgelockVars(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith("EDGELOCK_")));
}
