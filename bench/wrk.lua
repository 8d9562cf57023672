-- wrk script of bench/run.ts: one machine-readable result line from done(), and, when a body file is given
-- after `--`, POST requests whose bodies are that file with its first 16 bytes made unique per request (so a
-- content-addressed store cannot skip writing a copy it already has). RUN_ID (8 hex digits, a new one for
-- each wrk run) keeps them unique across runs too: a warm-up and the measured run that follows it would
-- otherwise send the same bodies.
-- Usage: wrk [options] -s bench/wrk.lua URL [-- BODY_FILE RUN_ID]

local threads = 0
local counter = 0

-- Runs in wrk's main Lua state, once per thread; `tag` becomes a global of that thread's own state.
function setup(thread)
  threads = threads + 1
  thread:set("tag", threads)
end

function init(args)
  local path, run = args[1], args[2]
  if not path then return end
  assert(run and #run == 8, "a body file needs an 8-hex-digit run id after it")
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
    return head .. run .. string.format("%02x%06x", tag % 256, counter % 16777216) .. rest
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
