;; A key-value store for storage tests.
;; put:  input [key length u8][key][value]      del: input = key
;; list: input = prefix; outputs every key with it, each as [length u8][key], in order,
;;       walking storage_next from no lower bound.
(module
  (import "semel" "input_len" (func $input_len (result i32)))
  (import "semel" "input_read" (func $input_read (param i32)))
  (import "semel" "storage_set" (func $set (param i32 i32 i32 i32)))
  (import "semel" "storage_remove" (func $remove (param i32 i32)))
  (import "semel" "storage_next" (func $next (param i32 i32 i32 i32 i32 i32) (result i64)))
  (import "semel" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)

  (func (export "put")
    (local $len i32) (local $klen i32)
    (local.set $len (call $input_len))
    (call $input_read (i32.const 0))
    (local.set $klen (i32.load8_u (i32.const 0)))
    (call $set (i32.const 1) (local.get $klen)
               (i32.add (i32.const 1) (local.get $klen))
               (i32.sub (local.get $len) (i32.add (i32.const 1) (local.get $klen)))))

  (func (export "del")
    (call $input_read (i32.const 0))
    (call $remove (i32.const 0) (call $input_len)))

  (func (export "list")
    (local $plen i32) (local $out i32) (local $klen i64) (local $after i32) (local $alen i32)
    (local.set $plen (call $input_len))
    (call $input_read (i32.const 0))
    (local.set $out (i32.const 8192))
    (local.set $alen (i32.const -1))
    (block $done
      (loop $walk
        (local.set $klen
          (call $next (i32.const 0) (local.get $plen)
                      (local.get $after) (local.get $alen)
                      (i32.add (local.get $out) (i32.const 1)) (i32.const 255)))
        (br_if $done (i64.lt_s (local.get $klen) (i64.const 0)))
        (i32.store8 (local.get $out) (i32.wrap_i64 (local.get $klen)))
        (local.set $after (i32.add (local.get $out) (i32.const 1)))
        (local.set $alen (i32.wrap_i64 (local.get $klen)))
        (local.set $out (i32.add (local.get $after) (local.get $alen)))
        (br $walk)))
    (call $output (i32.const 8192) (i32.sub (local.get $out) (i32.const 8192))))
)
