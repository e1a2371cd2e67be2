/**
 * A mock Hugging Face hub on 127.0.0.1 (port 0) for the hub tests:
 *   GET /api/models/{repo}/revision/{rev}   model info with the commit sha
 *   GET /api/models/{repo}/tree/{rev}       recursive file listing (oid, size, lfs.oid)
 *   GET /{repo}/resolve/{rev}/{path}        file bytes with ETag / X-Linked-Etag, Range → 206
 * It records every request and can cut the connection after N bytes of a file's first response.
 */
import * as http from "node:http";
import { createHash } from "node:crypto";
import type { AddressInfo } from "node:net";

export interface MockFile {
  path: string;
  content: Uint8Array;
  lfs?: boolean;
}

export interface MockRepo {
  id: string;
  sha: string;
  files: MockFile[];
  /** Listing entries with paths that are not real files (hostile names). */
  extraListing?: { path: string; size: number }[];
}

export interface RecordedRequest {
  url: string;
  range: string | undefined;
  authorization: string | undefined;
}

export interface MockHub {
  url: string;
  requests: RecordedRequest[];
  resolveRequests(): RecordedRequest[];
  /** Cut the first response for `path` after `bytes` bytes. */
  cutOnce(path: string, bytes: number): void;
  /** Serve wrong bytes for `path` (to test hash checks); `on = false` serves it right again. */
  corrupt(path: string, on?: boolean): void;
  close(): Promise<void>;
}

export const gitOid = (b: Uint8Array) => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");
export const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

export async function startMockHub(repos: MockRepo[]): Promise<MockHub> {
  const byId = new Map(repos.map((r) => [r.id, r]));
  const requests: RecordedRequest[] = [];
  const cuts = new Map<string, number>();
  const corrupted = new Set<string>();
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "Content-Type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    requests.push({ url: url.pathname, range: req.headers.range, authorization: req.headers.authorization });
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree)\/([^/]+)$/.exec(url.pathname);
    if (api) {
      const repo = byId.get(decodeURIComponent(api[1]!));
      const rev = decodeURIComponent(api[3]!);
      if (!repo || (rev !== "main" && rev !== "HEAD" && rev !== repo.sha)) return json(res, 404, { error: "Repository not found" });
      if (api[2] === "revision") {
        return json(res, 200, { _id: "x", id: repo.id, sha: repo.sha, private: false, gated: false, downloads: 0, likes: 0, lastModified: "2024-01-01T00:00:00.000Z" });
      }
      const listing = repo.files.map((f) => ({
        type: "file",
        oid: gitOid(f.content),
        size: f.content.length,
        path: f.path,
        ...(f.lfs ? { lfs: { oid: sha256(f.content), size: f.content.length, pointerSize: 134 } } : {}),
      }));
      for (const x of repo.extraListing ?? []) listing.push({ type: "file", oid: "0".repeat(40), size: x.size, path: x.path });
      return json(res, 200, [{ type: "directory", oid: "1".repeat(40), size: 0, path: "sub" }, ...listing]);
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (resolve) {
      const repo = byId.get(decodeURIComponent(resolve[1]!));
      const file = repo?.files.find((f) => f.path === resolve[3]!.split("/").map(decodeURIComponent).join("/"));
      if (!repo || !file) return json(res, 404, { error: "Entry not found" });
      let body = file.content;
      if (corrupted.has(file.path)) {
        body = body.slice();
        body[0]! ^= 0xff;
      }
      const headers: Record<string, string> = { "Accept-Ranges": "bytes", ETag: `"${file.lfs ? sha256(file.content) : gitOid(file.content)}"` };
      if (file.lfs) headers["X-Linked-Etag"] = `"${sha256(file.content)}"`;
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
      let start = 0;
      let status = 200;
      if (m) {
        start = Number(m[1]);
        if (start >= body.length) {
          res.writeHead(416, { "Content-Range": `bytes */${body.length}` });
          return res.end();
        }
        status = 206;
        headers["Content-Range"] = `bytes ${start}-${body.length - 1}/${body.length}`;
      }
      const part = body.subarray(start);
      headers["Content-Length"] = String(part.length);
      res.writeHead(status, headers);
      const cut = cuts.get(file.path);
      if (cut !== undefined) {
        cuts.delete(file.path);
        res.write(part.subarray(0, cut), () => res.socket?.destroy());
        return;
      }
      return res.end(part);
    }
    json(res, 404, { error: "not found" });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    resolveRequests: () => requests.filter((r) => r.url.includes("/resolve/")),
    cutOnce: (p, bytes) => void cuts.set(p, bytes),
    corrupt: (p, on = true) => void (on ? corrupted.add(p) : corrupted.delete(p)),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
