"""A stand-in for the Hugging Face Hub on 127.0.0.1: the routes `datasets.load_dataset` calls for dataset
repositories held in memory (found by logging its requests against a server that answered 404 to all)."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import urllib.parse

# The dataset card's YAML says which files make each split, as stanfordnlp/imdb's does.
README = """---
configs:
- config_name: plain_text
  data_files:
  - split: train
    path: plain_text/train-*
  - split: test
    path: plain_text/test-*
  default: true
---
# A tiny IMDB in the Hub's layout
"""


class Hub:
    """The few Hub API routes `datasets.load_dataset` uses, for dataset repositories held in memory
    (repository -> path in it -> bytes, each with its README.md, the dataset card)."""

    def __init__(self, repos):
        self.repos, self.sha = repos, "a" * 40
        self.log = []

    def entries(self, repo, prefix=""):
        out, dirs = [], set()
        for path, data in sorted(self.repos[repo].items()):
            if prefix and not path.startswith(prefix.rstrip("/") + "/"):
                continue
            out.append({"type": "file", "path": path, "size": len(data), "oid": hashlib.sha1(data).hexdigest()})
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                dirs.add("/".join(parts[:i]))
        out += [
            {"type": "directory", "path": d, "oid": "0" * 40}
            for d in sorted(dirs)
            if not prefix or d.startswith(prefix)
        ]
        return out


class Handler(http.server.BaseHTTPRequestHandler):
    def _send(self, code, body=b"", ctype="application/json", headers=()):
        self.send_response(code)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        hub = self.server.hub
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        url = urllib.parse.urlparse(self.path)
        hub.log.append((self.command, url.path))
        # the longest repository name the path names (owner/name; a few tests use a bare name)
        named = [r for r in hub.repos if f"/datasets/{r}/" in url.path + "/"]
        if not named:
            return self._send(404, b'{"error":"not found"}', headers=[("X-Error-Code", "RepoNotFound")])
        repo = max(named, key=len)
        files = hub.repos[repo]
        api = f"/api/datasets/{repo}"
        if url.path.startswith(f"/datasets/{repo}/resolve/"):
            rev, _, path = url.path[len(f"/datasets/{repo}/resolve/") :].partition("/")
            path = urllib.parse.unquote(path)
            if path not in files:
                return self._send(404, b'{"error":"not found"}', headers=[("X-Error-Code", "EntryNotFound")])
            data = files[path]
            etag = '"' + hashlib.sha1(data).hexdigest() + '"'
            return self._send(200, data, "application/octet-stream", [("ETag", etag), ("X-Repo-Commit", hub.sha)])
        if url.path == api or url.path.startswith(f"{api}/revision/"):  # any revision: the one snapshot held
            info = {
                "id": repo,
                "sha": hub.sha,
                "siblings": [{"rfilename": p} for p in files],
                "private": False,
                "gated": False,
                "disabled": False,
                "cardData": {},
                "tags": [],
            }
            return self._send(200, json.dumps(info).encode())
        if url.path.startswith(f"{api}/tree/"):
            rev, _, prefix = url.path[len(f"{api}/tree/") :].partition("/")  # a revision's "/" is quoted
            prefix = urllib.parse.unquote(prefix)
            entries = hub.entries(repo, prefix)
            if "recursive=true" not in url.query and "recursive=True" not in url.query:
                depth = prefix.count("/") + 1 if prefix else 0
                entries = [e for e in entries if e["path"].count("/") == depth]
            return self._send(200, json.dumps(entries).encode())
        if url.path.startswith(f"{api}/paths-info/"):
            form = urllib.parse.parse_qs(body.decode())
            paths = form.get("paths", [])
            if not paths and body.startswith(b"{"):
                paths = json.loads(body).get("paths", [])
            entries = [e for e in hub.entries(repo) if e["path"] in paths]
            return self._send(200, json.dumps(entries).encode())
        return self._send(404, b'{"error":"not found"}')

    do_GET = do_HEAD = do_POST = handle_any

    def log_message(self, *a):
        pass


def serve(repo: str, files: dict[str, bytes], readme: str = README) -> tuple[http.server.ThreadingHTTPServer, Hub]:
    """Serve ``files`` (path in the repository -> bytes) as the dataset ``repo``; stop with .shutdown()."""
    return serve_repos({repo: {"README.md": readme.encode(), **files}})


def serve_repos(repos: dict[str, dict[str, bytes]]) -> tuple[http.server.ThreadingHTTPServer, Hub]:
    """Serve several dataset repositories (each a path -> bytes mapping with its README.md)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.hub = Hub(repos)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.hub
