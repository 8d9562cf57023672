-- wrk script of bench/run.ts: one machine-readable result line from done(), and, when a body file is given
-- after `--`, POST requests whose bodies are that file with its first 16 bytes made unique per request (so a
-- content-addressed store cannot skip writing a copy it already has).
-- Usage: wrk [options] -s bench/wrk.lua URL [-- BODY_FILE]

local threads = 0
local counter = 0

-- Runs in wrk's main Lua state, once per thread; `tag` becomes a global of that thread's own state.
function setup(thread)
  threads = threads + 1
  thread:set("tag", threads)
end

function init(args)
  local path = args[1]
  if not path then return end
  local file = assert(io.open(path, "rb"))
  local body = file:read("*a")
  file:close()
  assert(#body >= 16, "the body file must hold at least 16 bytes")
  local rest = body:sub(17)
  local template = wrk.format("POST", nil, nil, string.rep("0", 16) .. rest)
  local head = template:sub(1, #template - #body)
  -- Defining request() makes the requests dynamic: one string concatenation per request.
  request = function()
    counter = counter + 1
    return head .. string.format("%08x%08x", tag, counter) .. rest
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"durationUs":%d,"requests":%d,"bytes":%d,"connectErrors":%d,"readErrors":%d,' ..
    '"writeErrors":%d,"timeouts":%d,"statusErrors":%d,"p50Us":%d,"p99Us":%d}\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
