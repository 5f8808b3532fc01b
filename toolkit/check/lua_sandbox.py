"""Run function library code as Redis runs it when it loads an RDB, in a child process.

``python -m toolkit.check.lua_sandbox`` reads a request on stdin and writes one JSON line per
library on stdout, as each finishes. The request: one line of JSON (``{"server": "redis" | "valkey",
"version": "7.0.15"}``), then each library's code (the part after its shebang line, newline
included, as Redis hands it to the engine) as an 8-byte big-endian length and the bytes.

Each library runs in a fresh Lua 5.1 (``lupa.lua51``: the Lua Redis embeds) with nothing but
what Redis's function_lua.c gives code at load time: the globals table is empty and read-only,
reading any global but ``redis`` (and, for Valkey, ``server``) is an error, and that table holds
``register_function`` (both call forms, checked as luaRegisterFunctionReadArgs checks them),
``log``, the ``LOG_*`` levels and the version fields; nothing else (no os, io, require, load,
pcall, setmetatable...). Strings keep their methods (``("x"):rep(3)``), as in Redis.

Limits, where Redis has none when it loads an RDB (a library that never finishes hangs it):
``INSTRUCTIONS`` Lua instructions and ``MEMORY`` bytes per library; a C function that runs for
long (a pathological pattern match) is ended by the parent's timeout, which kills this process.

A result: ``{"ok": true, "functions": [...]}`` or ``{"ok": false, "error": "..."}``, texts as
latin-1 (the bytes Lua had).
"""

from __future__ import annotations

import json
import struct
import sys
from typing import Any, BinaryIO

INSTRUCTIONS = 20_000_000
MEMORY = 64 << 20
HOOK_EVERY = 1000

# A function running one library in the load-time environment; its arguments: code, server
# name, Redis version text and number, Valkey version text and number (or nil), instruction
# budget, hook step. It returns true and the names registered, or false and the error. What it
# uses is taken when it is made: the globals that hold them are removed afterwards.
_RUN = r"""
local type, tostring, tonumber, next, error, select = type, tostring, tonumber, next, error, select
local setmetatable, setfenv, loadstring, pcall = setmetatable, setfenv, loadstring, pcall
local lower, find, floor, ceil = string.lower, string.find, math.floor, math.ceil
local sethook = debug.sethook
return function(...)
local code, server, version, version_num, valkey, valkey_num, budget, step = ...
local FLAGS = {["no-writes"] = true, ["allow-oom"] = true, ["allow-stale"] = true,
               ["no-cluster"] = true, ["allow-cross-slot-keys"] = true}
local api_name = server == "valkey" and "server" or "redis"

local function nonexistent(_, name)  -- called by an __index: level 3 is the code reading
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 3)
end
local function readonly()
  error("Attempt to modify a readonly table", 2)
end
local function is_string(v)
  local t = type(v)
  return t == "string" or t == "number"
end

local registered, names = {}, {}
local function register(...)
  local argc = select("#", ...)
  if argc < 1 or argc > 2 then
    error("wrong number of arguments to " .. api_name .. ".register_function", 2)
  end
  local name, callback
  if argc == 1 then
    local args = ...
    if type(args) ~= "table" then
      error("calling " .. api_name .. ".register_function with a single argument is only "
            .. "applicable to Lua table (representing named arguments).", 2)
    end
    for key, value in next, args do
      if not is_string(key) then
        error("named argument key given to " .. api_name .. ".register_function is not a string", 2)
      end
      key = lower(tostring(key))
      if key == "function_name" then
        if not is_string(value) then error("function_name argument must be a string", 2) end
        name = tostring(value)
      elseif key == "description" then
        if not is_string(value) then error("description argument must be a string", 2) end
      elseif key == "callback" then
        if type(value) ~= "function" then error("callback argument must be a function", 2) end
        callback = value
      elseif key == "flags" then
        if type(value) ~= "table" then error("flags argument must be a table", 2) end
        local i = 1
        while value[i] ~= nil do
          local flag = value[i]
          if not is_string(flag) or not FLAGS[lower(tostring(flag))] then
            error("unknown flag given", 2)
          end
          i = i + 1
        end
      else
        error("unknown argument given to " .. api_name .. ".register_function", 2)
      end
    end
    if name == nil then
      error(api_name .. ".register_function must get a function name argument", 2)
    end
    if callback == nil then
      error(api_name .. ".register_function must get a callback argument", 2)
    end
  else
    local first, second = ...
    if not is_string(first) then
      error("first argument to " .. api_name .. ".register_function must be a string", 2)
    end
    if type(second) ~= "function" then
      error("second argument to " .. api_name .. ".register_function must be a function", 2)
    end
    name = tostring(first)
  end
  if not find(name, "^[A-Za-z0-9_]+$") then
    error("Function names can only contain letters, numbers, or underscores(_) and must be at "
          .. "least one character long", 2)
  end
  if registered[name] then
    error("Function already exists in the library", 2)
  end
  registered[name] = true
  names[#names + 1] = name
end

local function log(...)
  if select("#", ...) < 2 then error("redis.log() requires two arguments or more.", 2) end
  local level = tonumber((...))
  if level == nil then error("First argument must be a number (log level).", 2) end
  level = level >= 0 and floor(level) or ceil(level)
  if level < 0 or level > 3 then error("Invalid debug level.", 2) end
end

local fields = {
  register_function = register, log = log,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = version, REDIS_VERSION_NUM = version_num,
}
if server == "valkey" then
  fields.VALKEY_VERSION, fields.VALKEY_VERSION_NUM = valkey, valkey_num
  fields.SERVER_NAME = "valkey"
end
local api = setmetatable({}, {
  __index = function(t, name)
    local v = fields[name]
    if v == nil then nonexistent(t, name) end
    return v
  end,
  __newindex = readonly,
  __metatable = false,
})
local env = setmetatable({}, {
  __index = function(t, name)
    if name == "redis" or (server == "valkey" and name == "server") then return api end
    nonexistent(t, name)
  end,
  __newindex = readonly,
  __metatable = false,
})

local chunk, err = loadstring(code, "@user_function")
if not chunk then
  return false, "Error compiling function: " .. tostring(err)
end
setfenv(chunk, env)
local spent = 0
local function over()
  spent = spent + step
  if spent > budget then
    sethook(over, "l")  -- from here on every line fails, as Redis's load hook does
    error("the code did not finish within " .. budget .. " Lua instructions", 0)
  end
end
sethook(over, "", step)
local ok, failure = pcall(chunk)
sethook()
if not ok then
  if type(failure) == "table" then failure = failure.err or "an error object" end
  return false, "Error registering functions: " .. tostring(failure)
end
return true, names
end
"""


def run_library(code: bytes, server: str, version: str, valkey: str | None) -> dict[str, Any]:
    """Compile and run one library's code; the result as a JSON-ready dict."""
    import lupa.lua51 as lua  # imported here: only this child process needs it

    runtime = lua.LuaRuntime(
        encoding=None, register_eval=False, register_builtins=False, max_memory=MEMORY
    )
    run = runtime.execute(_RUN)
    # Nothing the code could reach should be there at all.
    runtime.execute(
        "os, io, package, require, module, dofile, loadfile, load, debug, collectgarbage,"
        " newproxy, gcinfo = nil"
    )
    try:
        ok, detail = run(
            code,
            server.encode(),
            version.encode(),
            version_number(version),
            valkey.encode() if valkey else None,
            version_number(valkey) if valkey else None,
            INSTRUCTIONS,
            HOOK_EVERY,
        )
    except lua.LuaMemoryError:
        return {"ok": False, "error": f"the code needed more than {MEMORY >> 20} MB of memory"}
    except lua.LuaError as e:  # an error escaping the pcall (a memory error while unwinding)
        return {"ok": False, "error": _text(str(e).encode("utf-8", "replace"))}
    if not ok:
        text = detail if isinstance(detail, bytes) else str(detail).encode()
        if text.endswith(b"not enough memory"):
            return {"ok": False, "error": f"the code needed more than {MEMORY >> 20} MB of memory"}
        return {"ok": False, "error": _text(text)}
    return {"ok": True, "functions": [_text(detail[i]) for i in range(1, len(detail) + 1)]}


def version_number(version: str) -> int:
    """``7.0.15`` as Redis's REDIS_VERSION_NUM (0x07000f); what cannot be read counts as 0."""
    parts = [int(p) if p.isdigit() else 0 for p in [*version.split("."), "0", "0"][:3]]
    return (min(parts[0], 255) << 16) | (min(parts[1], 255) << 8) | min(parts[2], 255)


def _text(value: bytes) -> str:
    return value.decode("latin-1")


def read_request(stream: BinaryIO) -> tuple[dict[str, Any], list[bytes]]:
    header = json.loads(stream.readline())
    codes = []
    while size := stream.read(8):
        (n,) = struct.unpack(">Q", size)
        codes.append(stream.read(n))
    return header, codes


def write_request(header: dict[str, Any], codes: list[bytes]) -> bytes:
    parts = [json.dumps(header).encode() + b"\n"]
    for code in codes:
        parts.append(struct.pack(">Q", len(code)) + code)
    return b"".join(parts)


def main() -> None:
    header, codes = read_request(sys.stdin.buffer)
    for code in codes:
        result = run_library(code, header["server"], header["version"], header.get("valkey"))
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
