"""A hand-made discovery and CA client for the attack tests: it speaks weft's gRPC protocol
with raw protobuf (no generated code) over TLS that pins the mesh root, with or without a client
certificate, and says in one JSON line what the control plane answered.

  intruder.py csr    ROOT ADDR TOKEN_FILE SPIFFE_ID OUT_DIR  -> {"code": "OK"} and OUT_DIR/{cert,key}.pem
  intruder.py delta  ROOT ADDR CERT KEY NODE_JSON            -> {"code": "OK" | "<gRPC code>", "details": ...}

CERT and KEY may be "-" for no client certificate.
"""

import json
import os
import subprocess
import sys

import grpc

SERVER_NAME = "weft-control.weft-system.svc"


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, value):
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint((num << 3) | 2) + varint(len(value)) + value


def node(n):
    out = b""
    for num, key in [(1, "id"), (2, "role"), (3, "namespace"), (4, "workload"), (5, "pod"),
                     (6, "ip"), (7, "serviceAccount"), (9, "revision"),
                     (10, "inboundAddress"), (11, "tunnelAddress")]:
        if n.get(key):
            out += field(num, n[key])
    for k, v in sorted(n.get("labels", {}).items()):
        out += field(8, field(1, k) + field(2, v))
    # The discovery protocol it speaks (weft_proto::PROTOCOL_VERSION), unless the claim says.
    out += field(12, n.get("protocolVersion", 2))
    return out


def strings(buf, wanted):
    """The string values of field `wanted` in a protobuf message."""
    i, out = 0, []
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 2:
            n, i = read_varint(buf, i)
            if num == wanted:
                out.append(buf[i:i + n].decode())
            i += n
        elif wire == 0:
            _, i = read_varint(buf, i)
        else:
            raise ValueError(f"wire type {wire}")
    return out


def read_varint(buf, i):
    shift, n = 0, 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def channel(root, addr, cert=None, key=None):
    creds = grpc.ssl_channel_credentials(
        root_certificates=open(root, "rb").read(),
        private_key=open(key, "rb").read() if key else None,
        certificate_chain=open(cert, "rb").read() if cert else None,
    )
    return grpc.secure_channel(addr, creds, options=[("grpc.ssl_target_name_override", SERVER_NAME)])


def answer(code, details=""):
    print(json.dumps({"code": code, "details": details}))


def csr(root, addr, token_file, spiffe, out):
    key, req = os.path.join(out, "key.pem"), os.path.join(out, "csr.pem")
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", "/", "-addext",
                    f"subjectAltName=URI:{spiffe}", "-out", req], check=True, capture_output=True)
    body = field(1, open(req).read())
    token = open(token_file).read().strip()
    call = channel(root, addr).unary_unary("/weft.v1.Certificates/Create")
    try:
        resp = call(body, metadata=[("authorization", f"Bearer {token}")], timeout=10)
    except grpc.RpcError as e:
        return answer(e.code().name, e.details())
    with open(os.path.join(out, "cert.pem"), "w") as f:
        f.write("".join(strings(resp, 1)))
    answer("OK")


def delta(root, addr, cert, key, node_json):
    cert = None if cert == "-" else cert
    key = None if key == "-" else key
    req = field(1, node(json.loads(node_json))) + field(2, "weft.dev/Proxy")
    call = channel(root, addr, cert, key).stream_stream("/weft.v1.Discovery/Delta")
    try:
        for _ in call(iter([req]), timeout=5):
            return answer("OK")
        answer("CLOSED")
    except grpc.RpcError as e:
        answer(e.code().name, e.details())


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    {"csr": csr, "delta": delta}[mode](*args)
