// A tiny DNS-over-HTTPS server (the JSON API that cloudflare-dns.com and dns.google speak) on
// loopback, so the Worker's TXT lookups are answered by the test: `records` maps a name to its
// TXT values, `addresses` maps a name to its A and AAAA addresses, and `requests` lists every name
// asked, in order. `failures` maps a name to a simulated outage: "http" answers HTTP 503,
// "servfail" answers DNS status 2 (SERVFAIL).
import http from "node:http";

/** Quotes one TXT value in presentation form, as real resolvers send it in `data`. */
function presentation(value) {
  return `"${String(value).replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

export function startFakeDoh() {
  const records = new Map();
  const addresses = new Map();
  const requests = [];
  const failures = new Map();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://fake-doh.invalid");
    if (req.method !== "GET" || url.pathname !== "/dns-query") {
      res.writeHead(404, { "content-type": "text/plain" });
      return res.end("not found");
    }
    const name = (url.searchParams.get("name") || "").replace(/\.$/, "").toLowerCase();
    const type = (url.searchParams.get("type") || "").toUpperCase();
    requests.push(name);
    if (type === "A" || type === "AAAA") {
      const v6 = type === "AAAA";
      const ips = addresses.get(name);
      const body = ips
        ? { Status: 0, Question: [{ name, type: v6 ? 28 : 1 }], Answer: ips.filter((ip) => ip.includes(":") === v6).map((ip) => ({ name, type: v6 ? 28 : 1, TTL: 60, data: ip })) }
        : { Status: 3, Question: [{ name, type: v6 ? 28 : 1 }] };
      res.writeHead(200, { "content-type": "application/dns-json" });
      return res.end(JSON.stringify(body));
    }
    if (!name || (type !== "TXT" && type !== "16")) {
      res.writeHead(400, { "content-type": "application/dns-json" });
      return res.end(JSON.stringify({ Status: 1 }));
    }
    if (failures.get(name) === "http") {
      res.writeHead(503, { "content-type": "text/plain" });
      return res.end("resolver overloaded");
    }
    if (failures.get(name) === "servfail") {
      res.writeHead(200, { "content-type": "application/dns-json" });
      return res.end(JSON.stringify({ Status: 2, Question: [{ name, type: 16 }] }));
    }
    const values = records.get(name) || [];
    const body = values.length
      ? {
          Status: 0,
          TC: false, RD: true, RA: true, AD: false, CD: false,
          Question: [{ name, type: 16 }],
          Answer: values.map((v) => ({ name, type: 16, TTL: 60, data: presentation(v) })),
        }
      : { Status: 3, Question: [{ name, type: 16 }] };
    res.writeHead(200, { "content-type": "application/dns-json" });
    res.end(JSON.stringify(body));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      resolve({
        url: `http://127.0.0.1:${port}/dns-query`,
        port,
        records,
        addresses,
        requests,
        failures,
        stop: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}
