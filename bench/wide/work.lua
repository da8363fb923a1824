-- bench/wide.py's Lua workload (lua5.4 work.lua ROUNDS): per round, a table
-- of 50000 pseudo-random integers sorted, 20000 strings formatted, joined
-- and matched with patterns, and a recursive Fibonacci.  Integer arithmetic
-- only, so the printed sum is the same on every system.
local rounds = tonumber(arg[1]) or 1

local function fib(k)
  if k < 2 then return k end
  return fib(k - 1) + fib(k - 2)
end

local sum = 0
for round = 1, rounds do
  local seed = round
  local t = {}
  for i = 1, 50000 do
    seed = (seed * 1103515245 + 12345) % 2147483648
    t[i] = seed
  end
  table.sort(t)
  sum = (sum + t[1] + t[25000] + t[50000]) % 1000000007

  local parts = {}
  for i = 1, 20000 do
    parts[i] = string.format("%05d:%x", i, t[i * 2] % 65536)
  end
  local s = table.concat(parts, ",")
  local hits = 0
  for _, hex in s:gmatch("(%d+):(%x+)") do
    if hex:find("f", 1, true) then hits = hits + 1 end
  end
  sum = (sum + hits * 7 + #s + fib(24)) % 1000000007
end
print(string.format("lua %d rounds: %d", rounds, sum))
