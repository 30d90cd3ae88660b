;; A counter in WebAssembly text: the host's own test and demo contract.
;; Storage: key "count" → u64 little-endian. Outputs are JSON numbers.
(module
  (import "semel" "storage_get" (func $get (param i32 i32 i32 i32) (result i64)))
  (import "semel" "storage_set" (func $set (param i32 i32 i32 i32)))
  (import "semel" "output" (func $output (param i32 i32)))
  (import "semel" "revert" (func $revert (param i32 i32)))
  (import "semel" "emit" (func $emit (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "count")
  (data (i32.const 32) "counter says no")
  (data (i32.const 64) "inc")

  ;; The stored count (0 when absent), via the 8 bytes at 16.
  (func $load (result i64)
    (if (i64.eq (call $get (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 8))
                (i64.const -1))
      (then (i64.store (i32.const 16) (i64.const 0))))
    (i64.load (i32.const 16)))

  (func $store (param $n i64)
    (i64.store (i32.const 16) (local.get $n))
    (call $set (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 8)))

  ;; Outputs $n as decimal text, written backwards ending at byte 200.
  (func $output_decimal (param $n i64)
    (local $p i32)
    (local.set $p (i32.const 200))
    (loop $digits
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i64.store8 (local.get $p)
        (i64.add (i64.const 48) (i64.rem_u (local.get $n) (i64.const 10))))
      (local.set $n (i64.div_u (local.get $n) (i64.const 10)))
      (br_if $digits (i64.ne (local.get $n) (i64.const 0))))
    (call $output (local.get $p) (i32.sub (i32.const 200) (local.get $p))))

  (func (export "init") (call $store (i64.const 0)))

  (func (export "inc")
    (local $n i64)
    (local.set $n (i64.add (call $load) (i64.const 1)))
    (call $store (local.get $n))
    (call $emit (i32.const 64) (i32.const 3) (i32.const 16) (i32.const 8))
    (call $output_decimal (local.get $n)))

  (func (export "get") (call $output_decimal (call $load)))

  (func (export "fail") (call $revert (i32.const 32) (i32.const 15)))

  ;; Writes, then reverts: the write must not survive.
  (func (export "inc_then_fail")
    (call $store (i64.add (call $load) (i64.const 1)))
    (call $revert (i32.const 32) (i32.const 15)))

  (func (export "trap") unreachable)

  (func (export "spin") (loop $forever (br $forever)))
)
