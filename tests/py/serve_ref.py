"""`aios serve` for one test: started on a free port (--port 0) with --threads 1, requests over
real HTTP on 127.0.0.1, JSON errors checked; stop() sends SIGTERM and returns the exit code."""
import http.client
import json
import os
import re
import select
import signal
import subprocess

from harness import AIOS, Skip


class Server:
    """`aios serve --port 0 ARGS...` for one test; stop() sends SIGTERM and returns the exit code."""

    def __init__(self, *args, env=None):
        if not os.path.exists(AIOS):
            raise Skip("aios not built")
        e = dict(os.environ)
        e.pop("AIOS_API_KEY", None)
        e.update(env or {})
        self.p = subprocess.Popen([AIOS, "serve", "--port", "0", "--threads", "1", *map(str, args)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)
        r, _, _ = select.select([self.p.stdout], [], [], 120)  # a real model loads first
        line = self.p.stdout.readline() if r else ""
        m = re.match(r"aios: serving on http://(\S+):(\d+)$", line.strip())
        if not m:
            self.p.kill()
            raise AssertionError(f"server did not start: {line!r} {self.p.stderr.read()}")
        self.port = int(m.group(2))

    def request(self, method, path, body=None, headers=None, raw=None, timeout=60):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        payload = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        return r.status, hdrs, payload

    def call(self, method, path, body=None, status=200, headers=None):
        st, h, payload = self.request(method, path, body, headers)
        assert st == status, (method, path, st, payload[:500])
        assert h.get("content-type") == "application/json", h
        return json.loads(payload)

    def error(self, method, path, body, status, param=None, headers=None, raw=None):
        st, h, payload = self.request(method, path, body, headers, raw=raw)
        assert st == status, (path, body, st, payload[:300])
        assert h.get("content-type") == "application/json", h
        err = json.loads(payload)["error"]
        assert err["message"] and err["type"], err
        if param is not None:
            assert err["param"] == param, (body, err)
        return err

    def sdk(self, api_key="none"):
        try:
            import openai
        except ImportError:
            raise Skip("the openai package is not installed (tests/requirements.txt)")
        return openai.OpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key=api_key, max_retries=0, timeout=60)

    def stop(self, timeout=10):
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise AssertionError("server did not exit within %d s of SIGTERM" % timeout)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
