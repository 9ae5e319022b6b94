"""Clients weft did not write. Usage: clients.py grpc|ws ADDRESS — prints a JSON result."""
import json
import sys


def grpc_client(addr):
    import grpc

    with grpc.insecure_channel(addr) as channel:
        say = channel.unary_unary("/echo.Echo/Say")
        reply, call = say.with_call(b"hello", metadata=(("x-client", "python"),), timeout=10)
        trailers = dict(call.trailing_metadata())
        chat = channel.stream_stream("/echo.Echo/Chat")
        answers = [r.decode() for r in chat(iter([b"a", b"b", b"c"]), timeout=10)]
        missing = channel.unary_unary("/echo.Echo/Nope")
        try:
            missing(b"x", timeout=10)
            code = "OK"
        except grpc.RpcError as e:
            code = e.code().name
        print(json.dumps({"reply": reply.decode(), "trailer": trailers.get("x-trailer"),
                          "chat": answers, "unknown_method": code}))


def ws_client(addr):
    import asyncio
    import websockets

    async def main():
        async with websockets.connect(f"ws://{addr}/echo") as conn:
            await conn.send("over the mesh")
            text = await conn.recv()
            await conn.send(b"\x00\x01binary")
            binary = await conn.recv()
            print(json.dumps({"text": text, "binary": list(binary)}))

    asyncio.run(main())


if __name__ == "__main__":
    {"grpc": grpc_client, "ws": ws_client}[sys.argv[1]](sys.argv[2])
