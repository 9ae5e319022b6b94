"""Servers weft did not write, for the third-party traffic tests.

Usage: servers.py http|grpc|ws   — binds 127.0.0.1:0, prints "PORT <n>", serves until killed.
  http: Python's http.server (HTTP/1.1): GET answers a JSON of method, path and headers;
        POST/PUT echo the body (Content-Length or chunked).
  grpc: grpcio, service echo.Echo: unary Say (echoes, sets trailing metadata), stream Chat.
  ws:   websockets echo server.
"""
import json
import sys


def http():
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, body, ctype):
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Backend", "python-http.server")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            info = {"method": "GET", "path": self.path, "version": self.request_version,
                    "headers": {k.lower(): v for k, v in self.headers.items()}}
            self.reply(json.dumps(info, sort_keys=True).encode(), "application/json")

        def read_body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = b""
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def do_POST(self):
            self.reply(self.read_body(), "application/octet-stream")

        do_PUT = do_POST

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("PORT", server.server_address[1], flush=True)
    server.serve_forever()


def grpc_server():
    from concurrent import futures
    import grpc

    def say(request, context):
        context.set_trailing_metadata((("x-trailer", "from-python"),))
        return b"echo:" + request

    def chat(requests, context):
        for r in requests:
            yield b"chat:" + r

    handler = grpc.method_handlers_generic_handler("echo.Echo", {
        "Say": grpc.unary_unary_rpc_method_handler(say),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print("PORT", port, flush=True)
    server.wait_for_termination()


def ws():
    import asyncio
    import websockets

    async def echo(conn):
        async for message in conn:
            await conn.send(message)

    async def main():
        async with websockets.serve(echo, "127.0.0.1", 0) as server:
            port = list(server.sockets)[0].getsockname()[1]
            print("PORT", port, flush=True)
            await asyncio.Future()

    asyncio.run(main())


if __name__ == "__main__":
    {"http": http, "grpc": grpc_server, "ws": ws}[sys.argv[1]]()
