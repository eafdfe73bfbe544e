-- POST one JSON body, read once from a file, on every request:
--   wrk -s bench/wrk/post_json.lua -H "X-API-Key: ..." URL -- BODY_FILE
-- Headers given with -H (the API key) are kept; wrk builds the request once per thread after
-- init(), so the body costs nothing per request.

function init(args)
   local path = args[1]
   if path == nil then
      error("usage: wrk -s post_json.lua URL -- BODY_FILE")
   end
   local file = assert(io.open(path, "rb"))
   wrk.body = file:read("*a")
   file:close()
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end
