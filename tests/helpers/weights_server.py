"""A real HTTP server on 127.0.0.1 serving weight files, for the download tests (no internet).

Threaded ``http.server``; it counts the requests per path, can cut a response mid-body (the
``Content-Length`` of the whole file, then half of it, then the connection closes), and stops
by itself after ``lifetime`` seconds if a test never reaches its ``with`` block's end.
"""
import http.server
import threading
from collections import Counter
from typing import Dict


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        server = self.server
        server.requests[self.path] += 1
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if self.path in server.cut:
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):  # quiet
        pass


class WeightsServer:
    """``with WeightsServer({'/w.pth': data}) as server: server.url('/w.pth')``."""

    def __init__(self, files: Dict[str, bytes], cut=(), lifetime: float = 60.0) -> None:
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.files = dict(files)
        self.httpd.cut = set(cut)
        self.httpd.requests = Counter()
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05, ), daemon=True)
        self._timer = threading.Timer(lifetime, self.httpd.shutdown)
        self._timer.daemon = True

    @property
    def requests(self) -> Counter:
        return self.httpd.requests

    def url(self, path: str = '/') -> str:
        host, port = self.httpd.server_address[:2]
        return f'http://{host}:{port}{path}'

    def __enter__(self) -> 'WeightsServer':
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=10)
