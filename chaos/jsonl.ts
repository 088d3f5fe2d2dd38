/**
 * Append-only JSONL logs. Client processes append synchronously, line by line, so a SIGKILL loses at most the
 * line being written; the orchestrator's own logs use a stream. `readJsonl` tolerates a torn last line.
 */
import { appendFileSync, createWriteStream, existsSync, readFileSync } from "node:fs";

export type Json = Record<string, unknown>;

export function appendSync(path: string, record: Json): void {
  appendFileSync(path, `${JSON.stringify(record)}\n`);
}

export interface JsonlStream {
  write(record: Json): void;
  close(): Promise<void>;
}

export function openJsonl(path: string): JsonlStream {
  const out = createWriteStream(path, { flags: "a" });
  return {
    write: (record) => void out.write(`${JSON.stringify(record)}\n`),
    close: () => new Promise((res) => out.end(res)),
  };
}

export function readJsonl<T = Json>(path: string): T[] {
  if (!existsSync(path)) return [];
  const rows: T[] = [];
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    try {
      rows.push(JSON.parse(line) as T);
    } catch {
      // a line torn by SIGKILL
    }
  }
  return rows;
}
