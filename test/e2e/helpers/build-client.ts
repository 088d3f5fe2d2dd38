/**
 * Builds client/dist (tsc -p client) so the CLI tests run what the package ships (`node client/dist/bin.js`),
 * not the TypeScript sources. Call it from a `beforeAll`.
 */
import { spawn } from "node:child_process";
import { join, resolve } from "node:path";

export const REPO_ROOT = resolve(import.meta.dirname, "../../..");
export const CLI = join(REPO_ROOT, "client", "dist", "bin.js");

export async function buildClient(): Promise<void> {
  const tsc = join(REPO_ROOT, "node_modules", ".bin", "tsc");
  const child = spawn(tsc, ["-p", join(REPO_ROOT, "client")], { cwd: REPO_ROOT, stdio: "inherit" });
  const code = await new Promise<number | null>((done) => child.on("exit", (c) => done(c)));
  if (code !== 0) throw new Error(`building the client failed (tsc exited ${code})`);
}
