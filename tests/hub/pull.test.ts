import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { HubError, UnsafePathError, checkRepoPath, globToRegExp, hubCacheDir, pathFilter, pull, repoFolderName, safeJoin } from "../../src/hub/index.ts";
import { pullCommand } from "../../src/cli/commands/pull.ts";
import { gitOid, sha256, startMockHub, type MockHub } from "./mockHub.ts";

const MB = 1 << 20;
const SHA = "0123456789abcdef0123456789abcdef01234567";
function pseudoRandom(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}
const enc = (s: string) => new TextEncoder().encode(s);
const WEIGHTS = pseudoRandom(3 * MB + 123, 1);
const FILES = [
  { path: "config.json", content: enc('{"model_type":"qwen2"}') },
  { path: "tokenizer.json", content: enc('{"version":"1.0"}') },
  { path: "model.safetensors", content: WEIGHTS, lfs: true },
  { path: "sub/dir/notes v2.md", content: enc("# notes") },
];

let hub: MockHub;
let tmp: string;
before(async () => {
  hub = await startMockHub([
    { id: "org/tiny", sha: SHA, files: FILES },
    { id: "org/evil", sha: SHA, files: [{ path: "ok.json", content: enc("{}") }], extraListing: [{ path: "../../x", size: 3 }] },
    { id: "org/evil2", sha: SHA, files: [{ path: "ok.json", content: enc("{}") }], extraListing: [{ path: "/etc/passwd", size: 3 }] },
  ]);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "graft-hub-"));
});
after(async () => {
  await hub.close();
});

test("hub: full download into the HF cache layout via HF_ENDPOINT, then a cache hit with no re-download", async () => {
  const cacheDir = path.join(tmp, "cache1");
  const saved = process.env["HF_ENDPOINT"];
  process.env["HF_ENDPOINT"] = hub.url;
  try {
    const before = hub.resolveRequests().length;
    const res = await pull({ repo: "org/tiny", cacheDir });
    assert.equal(res.commit, SHA);
    const repoDir = path.join(cacheDir, "models--org--tiny");
    assert.equal(res.dir, path.join(repoDir, "snapshots", SHA));
    assert.equal(fs.readFileSync(path.join(repoDir, "refs", "main"), "utf8"), SHA);
    for (const f of FILES) {
      const p = path.join(res.dir, f.path);
      assert.ok(fs.lstatSync(p).isSymbolicLink(), `${f.path} is a symlink into blobs/`);
      assert.ok(!path.isAbsolute(fs.readlinkSync(p)), "relative link");
      const blob = path.join(repoDir, "blobs", f.lfs ? sha256(f.content) : gitOid(f.content));
      assert.equal(fs.realpathSync(p), fs.realpathSync(blob));
      assert.deepEqual(fs.readFileSync(p), Buffer.from(f.content));
    }
    assert.equal(hub.resolveRequests().length - before, FILES.length);
    assert.deepEqual(fs.readdirSync(path.join(repoDir, "blobs")).filter((n) => n.endsWith(".incomplete")), []);

    const again = await pull({ repo: "org/tiny", cacheDir });
    assert.equal(hub.resolveRequests().length - before, FILES.length, "second pull makes zero resolve requests");
    assert.ok(again.files.every((f) => f.cached));
  } finally {
    if (saved === undefined) delete process.env["HF_ENDPOINT"];
    else process.env["HF_ENDPOINT"] = saved;
  }
});

test("hub: a connection cut at 1 MB resumes with Range from exactly the bytes on disk", async () => {
  const cacheDir = path.join(tmp, "cache-resume");
  hub.cutOnce("model.safetensors", MB);
  const start = hub.requests.length;
  const res = await pull({ repo: "org/tiny", cacheDir, endpoint: hub.url, include: ["*.safetensors"] });
  const reqs = hub.requests.slice(start).filter((r) => r.url.endsWith("/model.safetensors"));
  assert.equal(reqs.length, 2);
  assert.equal(reqs[0]!.range, undefined);
  assert.equal(reqs[1]!.range, `bytes=${MB}-`);
  const file = path.join(res.dir, "model.safetensors");
  assert.equal(sha256(fs.readFileSync(file)), sha256(WEIGHTS));
  assert.deepEqual(res.files.map((f) => f.path), ["model.safetensors"]);
});

test("hub: a partial file left by an earlier run is resumed (local dir), then the local dir is a cache hit", async () => {
  const dir = path.join(tmp, "local");
  const partial = path.join(dir, ".cache", "huggingface", "download", "model.safetensors.incomplete");
  fs.mkdirSync(path.dirname(partial), { recursive: true });
  fs.writeFileSync(partial, WEIGHTS.subarray(0, 777_777));
  const start = hub.requests.length;
  const res = await pull({ repo: "org/tiny", localDir: dir, endpoint: hub.url });
  const w = hub.requests.slice(start).filter((r) => r.url.endsWith("/model.safetensors"));
  assert.deepEqual(w.map((r) => r.range), ["bytes=777777-"]);
  for (const f of FILES) assert.deepEqual(fs.readFileSync(path.join(dir, f.path)), Buffer.from(f.content));
  assert.ok(!fs.lstatSync(path.join(dir, "model.safetensors")).isSymbolicLink());
  assert.equal(fs.existsSync(partial), false);
  assert.equal(res.dir, path.resolve(dir));
  const n = hub.resolveRequests().length;
  const again = await pull({ repo: "org/tiny", localDir: dir, endpoint: hub.url });
  assert.equal(hub.resolveRequests().length, n);
  assert.ok(again.files.every((f) => f.cached));
});

test("hub: include/exclude globs select files", async () => {
  const dir = path.join(tmp, "globs");
  const res = await pull({ repo: "org/tiny", localDir: dir, endpoint: hub.url, include: ["*.json", "sub/**"], exclude: ["tokenizer.*"] });
  assert.deepEqual(res.files.map((f) => f.path).sort(), ["config.json", "sub/dir/notes v2.md"]);
  assert.equal(fs.existsSync(path.join(dir, "model.safetensors")), false);
  await assert.rejects(pull({ repo: "org/tiny", localDir: dir, endpoint: hub.url, include: ["*.gguf"] }), /no files match/);
});

test("hub: a 404 repo gives an error naming the repo", async () => {
  await assert.rejects(pull({ repo: "org/missing", cacheDir: path.join(tmp, "c404"), endpoint: hub.url }), (e: unknown) => {
    return e instanceof HubError && e.status === 404 && /repository "org\/missing" \(revision "main"\) not found at http:\/\/127\.0\.0\.1/.test((e as Error).message);
  });
  await assert.rejects(pull({ repo: "../etc", endpoint: hub.url }), /not a valid repo id/);
});

test("hub: hostile file names from the server are refused and nothing is written", async () => {
  const root = path.join(tmp, "hostile");
  const dir = path.join(root, "a", "b");
  fs.mkdirSync(dir, { recursive: true });
  const n = hub.resolveRequests().length;
  await assert.rejects(pull({ repo: "org/evil", localDir: dir, endpoint: hub.url }), (e: unknown) => e instanceof UnsafePathError && /"\.\.\/\.\.\/x"/.test((e as Error).message));
  await assert.rejects(pull({ repo: "org/evil2", cacheDir: path.join(root, "cache"), endpoint: hub.url }), UnsafePathError);
  assert.equal(hub.resolveRequests().length, n, "no file was requested");
  assert.deepEqual(fs.readdirSync(root).sort(), ["a"]);
  assert.deepEqual(fs.readdirSync(dir), []);
  assert.equal(fs.existsSync(path.join(root, "x")), false);
});

test("hub: a file whose bytes do not match its sha256 is rejected and not kept", async () => {
  const cacheDir = path.join(tmp, "cache-bad");
  hub.corrupt("config.json");
  try {
    await assert.rejects(pull({ repo: "org/tiny", cacheDir, endpoint: hub.url, include: ["config.json"] }), /config\.json: git blob sha1 [0-9a-f]+ does not match/);
  } finally {
    hub.corrupt("config.json", false);
  }
  const blobs = path.join(cacheDir, "models--org--tiny", "blobs");
  assert.deepEqual(fs.existsSync(blobs) ? fs.readdirSync(blobs) : [], []);
});

test("hub: the pull command parses flags and calls the library", async () => {
  const dir = path.join(tmp, "cli");
  const saved = process.env["HF_ENDPOINT"];
  process.env["HF_ENDPOINT"] = hub.url;
  const log = console.log;
  const lines: string[] = [];
  console.log = (s: string) => void lines.push(s);
  try {
    const code = await pullCommand.run(["org/tiny", "--local-dir", dir, "--include", "*.json", "--quiet", "--token", "secret-token"]);
    assert.equal(code, 0);
    assert.deepEqual(lines, [path.resolve(dir)]);
    assert.ok(fs.existsSync(path.join(dir, "config.json")));
    assert.equal(hub.requests[hub.requests.length - 1]!.authorization, "Bearer secret-token");
  } finally {
    console.log = log;
    if (saved === undefined) delete process.env["HF_ENDPOINT"];
    else process.env["HF_ENDPOINT"] = saved;
  }
  assert.equal(pullCommand.name, "pull");
});

test("hub: cache location honours HF_HUB_CACHE and HF_HOME", () => {
  assert.equal(hubCacheDir({ HF_HUB_CACHE: "/x/hub" }), "/x/hub");
  assert.equal(hubCacheDir({ HF_HOME: "/h" }), path.join("/h", "hub"));
  assert.equal(hubCacheDir({}), path.join(os.homedir(), ".cache", "huggingface", "hub"));
  assert.equal(repoFolderName("Qwen/Qwen2.5-0.5B"), "models--Qwen--Qwen2.5-0.5B");
});

test("hub: glob matching and path safety", () => {
  assert.ok(globToRegExp("*.json").test("config.json"));
  assert.ok(globToRegExp("*.json").test("a/b/config.json"));
  assert.ok(!globToRegExp("*.json").test("config.jsonl"));
  assert.ok(globToRegExp("sub/*.md").test("sub/a.md"));
  assert.ok(!globToRegExp("sub/*.md").test("sub/x/a.md"));
  assert.ok(globToRegExp("sub/**/*.md").test("sub/a.md"));
  assert.ok(globToRegExp("sub/**/*.md").test("sub/x/y/a.md"));
  assert.ok(globToRegExp("model-0000?-of-*.safetensors").test("model-00001-of-00002.safetensors"));
  assert.ok(globToRegExp("*.{json,txt}").test("vocab.txt"));
  assert.ok(globToRegExp("[!.]*").test("a") && !globToRegExp("[!.]*").test(".a"));
  assert.ok(globToRegExp("a+b(1).json").test("a+b(1).json"));
  const f = pathFilter(["*.safetensors", "*.json"], ["*.index.json"]);
  assert.deepEqual(["a.safetensors", "config.json", "model.safetensors.index.json", "x.bin"].filter(f), ["a.safetensors", "config.json"]);
  for (const bad of ["../x", "a/../../x", "/etc/passwd", "a\\b", "a\0b", "", "a//b", "./a", "C:/x", "a/.."]) {
    assert.throws(() => checkRepoPath(bad), UnsafePathError, bad);
  }
  assert.equal(checkRepoPath("a/b c/d.json"), "a/b c/d.json");
  assert.equal(safeJoin("/r", "a/b"), path.resolve("/r/a/b"));
  assert.throws(() => safeJoin("/r", ".."), UnsafePathError);
});
