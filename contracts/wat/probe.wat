;; Calls host functions with sizes taken from its input, for limit tests.
;; Input: one or two u32 little-endian numbers, `a` at byte 0 and `b` at byte 4.
;; Memory: 20 pages (1.25 MiB); the bytes used as keys, values and data start at 65536
;; and are zero (any size up to 1 MiB is in bounds).
(module
  (import "semel" "input_read" (func $input_read (param i32)))
  (import "semel" "storage_set" (func $set (param i32 i32 i32 i32)))
  (import "semel" "storage_get" (func $get (param i32 i32 i32 i32) (result i64)))
  (import "semel" "emit" (func $emit (param i32 i32 i32 i32)))
  (import "semel" "blake3" (func $blake3 (param i32 i32 i32)))
  (import "semel" "log" (func $log (param i32 i32)))
  (import "semel" "revert" (func $revert (param i32 i32)))
  (import "semel" "output" (func $output (param i32 i32)))
  (import "semel" "call" (func $call (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 20)
  (data (i32.const 64) "counterget")

  (func $a (result i32) (call $input_read (i32.const 0)) (i32.load (i32.const 0)))
  (func $b (result i32) (i32.load (i32.const 4)))

  ;; set: key of a bytes, value of b bytes.
  (func (export "set")
    (call $set (i32.const 65536) (call $a) (i32.const 65536) (call $b)))
  ;; get: key of a bytes.
  (func (export "get")
    (drop (call $get (i32.const 65536) (call $a) (i32.const 65536) (i32.const 0))))
  ;; emit: topic of a bytes, data of b bytes.
  (func (export "emit")
    (call $emit (i32.const 65536) (call $a) (i32.const 65536) (call $b)))
  ;; emit_many: a events with empty topic and data.
  (func (export "emit_many")
    (local $n i32)
    (local.set $n (call $a))
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $n)))
        (call $emit (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $again))))
  ;; hash: a bytes.
  (func (export "hash") (call $blake3 (i32.const 65536) (call $a) (i32.const 0)))
  ;; log: a bytes.
  (func (export "log") (call $log (i32.const 65536) (call $a)))
  ;; revert: a bytes.
  (func (export "revert") (call $revert (i32.const 65536) (call $a)))
  ;; output: a bytes.
  (func (export "output") (call $output (i32.const 65536) (call $a)))
  ;; calls: call counter.get a times; output how many succeeded as a u32.
  (func (export "calls")
    (local $n i32) (local $ok i32)
    (local.set $n (call $a))
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $n)))
        (if (i32.eqz (call $call (i32.const 64) (i32.const 7) (i32.const 71) (i32.const 3)
                                 (i32.const 0) (i32.const 0)))
          (then (local.set $ok (i32.add (local.get $ok) (i32.const 1)))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $again)))
    (i32.store (i32.const 8) (local.get $ok))
    (call $output (i32.const 8) (i32.const 4)))
)
