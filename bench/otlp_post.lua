-- wrk script: POSTs one prebuilt OTLP/HTTP protobuf request (BODY_FILE) to /v1/logs.
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/x-protobuf"
wrk.path = "/v1/logs"
