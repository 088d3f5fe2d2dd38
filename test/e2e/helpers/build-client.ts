/**
 * Vitest global setup for e2e: builds client/dist once, so the CLI tests run what the package ships
 * (`node client/dist/bin.js`), not the TypeScript sources.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT } from "./wrangler-dev.ts";

export default async function setup(): Promise<void> {
  const tsc = join(REPO_ROOT, "node_modules", ".bin", "tsc");
  const child = spawn(tsc, ["-p", join(REPO_ROOT, "client")], { cwd: REPO_ROOT, stdio: "inherit" });
  const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  if (code !== 0) throw new Error(`building the client failed (tsc exited ${code})`);
}
