-- The cheapest statement with one bind and one row back: what a client path costs per statement (`tally bench
-- postgres` sends the same).
\set n random(1, 1000000)
SELECT :n::int8;
