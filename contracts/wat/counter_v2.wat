;; The counter's second version, for upgrade tests: the same storage ("count" → u64
;; little-endian), `inc` adds 10, `get` answers "v2:N". Its `migrate` adds 1000 to the
;; count, outputs the new count and records `schema` = 2; given any argument, or when
;; `schema` is 2 already (a direct call of `migrate`, which is an ordinary method too,
;; or a second migrate to this code), it reverts instead: it runs once.
(module
  (import "semel" "storage_get" (func $get (param i32 i32 i32 i32) (result i64)))
  (import "semel" "storage_set" (func $set (param i32 i32 i32 i32)))
  (import "semel" "output" (func $output (param i32 i32)))
  (import "semel" "revert" (func $revert (param i32 i32)))
  (import "semel" "input_len" (func $input_len (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "count")
  (data (i32.const 32) "migrate refused")
  (data (i32.const 64) "v2:")
  (data (i32.const 80) "schema")
  (data (i32.const 96) "already at schema 2")

  (func $load (result i64)
    (if (i64.eq (call $get (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 8))
                (i64.const -1))
      (then (i64.store (i32.const 16) (i64.const 0))))
    (i64.load (i32.const 16)))

  (func $store (param $n i64)
    (i64.store (i32.const 16) (local.get $n))
    (call $set (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 8)))

  ;; Writes $n as decimal text backwards ending at byte 200; returns where it starts.
  (func $decimal (param $n i64) (result i32)
    (local $p i32)
    (local.set $p (i32.const 200))
    (loop $digits
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i64.store8 (local.get $p)
        (i64.add (i64.const 48) (i64.rem_u (local.get $n) (i64.const 10))))
      (local.set $n (i64.div_u (local.get $n) (i64.const 10)))
      (br_if $digits (i64.ne (local.get $n) (i64.const 0))))
    (local.get $p))

  (func $output_decimal (param $n i64)
    (local $p i32)
    (local.set $p (call $decimal (local.get $n)))
    (call $output (local.get $p) (i32.sub (i32.const 200) (local.get $p))))

  (func (export "init") (call $store (i64.const 0)))

  (func (export "migrate")
    (if (i32.ne (call $input_len) (i32.const 0))
      (then (call $revert (i32.const 32) (i32.const 15))))
    ;; "schema" is absent (-1) until a migrate to this code stored the byte 2.
    (if (i64.ne (call $get (i32.const 80) (i32.const 6) (i32.const 120) (i32.const 1))
                (i64.const -1))
      (then (call $revert (i32.const 96) (i32.const 19))))
    (i32.store8 (i32.const 120) (i32.const 2))
    (call $set (i32.const 80) (i32.const 6) (i32.const 120) (i32.const 1))
    (call $store (i64.add (call $load) (i64.const 1000)))
    (call $output_decimal (call $load)))

  (func (export "inc")
    (call $store (i64.add (call $load) (i64.const 10)))
    (call $output_decimal (call $load)))

  ;; "v2:" then the count: the 3 bytes go just before the digits.
  (func (export "get")
    (local $p i32)
    (local.set $p (i32.sub (call $decimal (call $load)) (i32.const 3)))
    (memory.copy (local.get $p) (i32.const 64) (i32.const 3))
    (call $output (local.get $p) (i32.sub (i32.const 200) (local.get $p))))
)
