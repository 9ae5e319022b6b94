"""A real OTLP/gRPC trace receiver for the tracing test: it serves
opentelemetry.proto.collector.trace.v1.TraceService/Export with the generated code of the
`opentelemetry-proto` package and writes every span it receives as one JSON line to OUT:

  {"trace_id": HEX, "span_id": HEX, "parent_span_id": HEX or "", "name": ..., "kind": "SERVER",
   "service_name": ..., "attributes": {KEY: VALUE}}

  otlp_receiver.py LISTEN_HOST:PORT OUT

It prints "listening HOST:PORT" on stdout once it serves, and runs until it is killed.
"""

import json
import sys
import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2


def value(v):
    """An OTLP AnyValue as plain JSON."""
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind) if kind else None


def attributes(kvs):
    return {kv.key: value(kv.value) for kv in kvs}


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()

    def Export(self, request, context):
        lines = []
        for rs in request.resource_spans:
            service = attributes(rs.resource.attributes).get("service.name", "")
            for ss in rs.scope_spans:
                for span in ss.spans:
                    kind = trace_pb2.Span.SpanKind.Name(span.kind)
                    lines.append(json.dumps({
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": kind.removeprefix("SPAN_KIND_"),
                        "service_name": service,
                        "attributes": attributes(span.attributes),
                    }))
        with self.lock:
            self.out.write("".join(line + "\n" for line in lines))
            self.out.flush()
        return trace_service_pb2.ExportTraceServiceResponse()


def main():
    listen, path = sys.argv[1], sys.argv[2]
    out = open(path, "a", encoding="utf-8")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Receiver(out), server)
    if server.add_insecure_port(listen) == 0:
        sys.exit(f"cannot listen on {listen}")
    server.start()
    print(f"listening {listen}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
