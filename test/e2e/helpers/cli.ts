/**
 * Runs the built CLI (`client/dist/bin.js`, built by the e2e global setup) as a real child process and
 * collects its exit code and output.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT } from "./wrangler-dev.ts";

export const CLI = join(REPO_ROOT, "client", "dist", "bin.js");

export interface CliResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export function startCli(
  args: string[],
  env: Record<string, string | undefined>,
): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, EDGELOCK_URL: undefined, EDGELOCK_TOKEN: undefined, ...env },
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

export function runCli(args: string[], env: Record<string, string | undefined>): Promise<CliResult> {
  return startCli(args, env).done;
}
