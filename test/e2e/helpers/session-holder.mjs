// One OS process that holds a lock through a session and then does nothing: the test kill -9s it.
// argv: baseUrl name ttlMs. Prints "held <leaseId> <token>" once granted. Uses Node's global WebSocket.
const [baseUrl, name, ttlMs] = process.argv.slice(2);
const ws = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/v1/locks/${name}/session`, ["edgelock.v1"]);
ws.addEventListener("open", () => {
  ws.send(JSON.stringify({ type: "acquire", id: 1, ttlMs: Number(ttlMs), waitMs: 600_000 }));
  // Heartbeats, as a live client sends them: the lock must free because the process dies, not by silence.
  setInterval(() => ws.send("ping"), 1_000);
});
ws.addEventListener("message", (e) => {
  const frame = JSON.parse(String(e.data));
  if (frame.type === "granted") console.log(`held ${frame.leaseId} ${frame.token}`);
  else if (frame.type === "error") {
    console.error(`refused: ${e.data}`);
    process.exit(1);
  }
});
ws.addEventListener("error", (e) => {
  console.error(`session error: ${e.message ?? e}`);
  process.exit(1);
});
