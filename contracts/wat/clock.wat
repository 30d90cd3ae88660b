;; Stamps the version a transaction reads from (interface §2, `version`): writes it to
;; key "last" as u64 little-endian and outputs the same 8 bytes.
(module
  (import "semel" "version" (func $version (result i64)))
  (import "semel" "storage_set" (func $set (param i32 i32 i32 i32)))
  (import "semel" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "last")
  (func (export "stamp")
    (i64.store (i32.const 16) (call $version))
    (call $set (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 8))
    (call $output (i32.const 16) (i32.const 8))))
