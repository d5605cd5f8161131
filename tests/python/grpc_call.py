"""Makes one raw unary gRPC call with grpcio and reports the status, decoding the
`grpc-status-details-bin` trailer with Google's own protobuf types.

Usage: grpc_call.py HOST:PORT METHOD FILE [ENCODING]. FILE holds the serialized request.
Prints {"code": ..., "message": ..., "retry_delay_s": ... or null}.
"""
import json
import sys

import grpc
from google.rpc import error_details_pb2, status_pb2

target, method, path = sys.argv[1], sys.argv[2], sys.argv[3]
compression = grpc.Compression.Gzip if len(sys.argv) > 4 and sys.argv[4] == "gzip" else None
body = open(path, "rb").read()
with grpc.insecure_channel(target) as channel:
    call = channel.unary_unary(method)
    code, message, delay = "OK", "", None
    try:
        call(body, timeout=10, compression=compression)
    except grpc.RpcError as e:
        code, message = e.code().name, e.details()
        for key, value in e.trailing_metadata() or ():
            if key == "grpc-status-details-bin":
                status = status_pb2.Status.FromString(value)
                for detail in status.details:
                    info = error_details_pb2.RetryInfo()
                    if detail.Unpack(info):
                        delay = info.retry_delay.ToTimedelta().total_seconds()
print(json.dumps({"code": code, "message": message, "retry_delay_s": delay}))
