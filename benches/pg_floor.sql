\set base random(1, 2000000000)
BEGIN;
SELECT v FROM f_meta WHERE k = '\x76'::bytea FOR UPDATE;
INSERT INTO f_state (k, v) SELECT int8send(:base::int8 * 1024 + g) || '\x0007636f756e74657200'::bytea, '\x010100000000000000'::bytea FROM generate_series(1, 256) g ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;
INSERT INTO f_txs (k, v) SELECT int8send(:base::int8 * 1024 + g) || int8send(g), decode(repeat('ab', 250), 'hex') FROM generate_series(1, 256) g ON CONFLICT DO NOTHING;
INSERT INTO f_log (k, v) SELECT int8send(:base::int8 * 1024 + g), decode(repeat('cd', 60), 'hex') FROM generate_series(1, 256) g ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;
INSERT INTO f_events (k, v) SELECT int8send(:base::int8 * 4096 + g) || '\x00636f756e746572696e63'::bytea, CASE WHEN g % 4 = 0 THEN decode(repeat('ef', 40), 'hex') ELSE '\x'::bytea END FROM generate_series(1, 1024) g ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;
INSERT INTO f_meta (k, v) VALUES ('\x76'::bytea, int8send(:base)), ('\x6c'::bytea, decode(repeat('01', 2048), 'hex')), ('\x65'::bytea, int8send(:base)) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;
UPDATE f_sessions SET token = int8send(:base) WHERE session = '\x01'::bytea;
COMMIT;
