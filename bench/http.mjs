/**
 * The bench's HTTP client for edgelock and for the workerd floor: Node's own `http` with a keep-alive agent.
 * Not `fetch`: in Node 22, `fetch` spends about 0.7 ms of client CPU per request against 0.3 ms for
 * `http.request` (RESULTS.md, "The bench's HTTP client"), and on this 2-core machine the contended counter's
 * four client processes share the CPU with the server, so the client's own cost was what P=4 measured.
 */
import http from "node:http";

const agent = new http.Agent({ keepAlive: true });

/**
 * POSTs `body` as JSON and resolves the status, the parsed answer, and when the body was handed to the socket
 * (`sentAt`, epoch ms): the moment the request took its place in line, as near as a client can see it.
 */
export function postJson(url, body, headers = {}) {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    let sentAt;
    const req = http.request(
      url,
      {
        method: "POST",
        agent,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
          ...headers,
        },
      },
      (res) => {
        const chunks = [];
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          try {
            resolve({ status: res.statusCode, json: text === "" ? null : JSON.parse(text), sentAt });
          } catch (err) {
            reject(new Error(`${url}: ${res.statusCode}, not JSON: ${text.slice(0, 200)} (${err})`));
          }
        });
      },
    );
    req.on("error", reject);
    req.on("finish", () => {
      sentAt = performance.timeOrigin + performance.now();
    });
    req.end(payload);
  });
}
