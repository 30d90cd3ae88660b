//! Deploy-time checks of a contract module against interface §1: imports only from the
//! ABI with exactly its types, one unshared memory exported as `memory`, no start
//! function, bounded sizes, valid method names. Instruction-level validation is
//! wasmtime's, when it compiles the module.

use wasmparser::{DataKind, ExternalKind, FuncType, Operator, Parser, Payload, TypeRef, ValType};

use crate::error::ModuleError;
use crate::limits::{
    CODE_BYTES_MAX, MEMORY_PAGES_MAX, METHOD_NAME_BYTES_MAX, TABLE_ELEMENTS_MAX, WASM_PAGE_BYTES,
};
use crate::vm::abi::{self, AbiType, MEMORY_EXPORT};

/// What deploy needs to know about an accepted module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    /// Exported `[] -> []` functions other than `init`, in export order.
    pub methods: Vec<String>,
    /// Whether it exports an `init` of type `[] -> []`.
    pub has_init: bool,
}

fn refused(why: impl Into<String>) -> ModuleError {
    ModuleError::Refused(why.into())
}

fn malformed(e: wasmparser::BinaryReaderError) -> ModuleError {
    ModuleError::Malformed(e.to_string())
}

fn abi_type(v: ValType) -> Option<AbiType> {
    match v {
        ValType::I32 => Some(AbiType::I32),
        ValType::I64 => Some(AbiType::I64),
        _ => None,
    }
}

fn type_text(t: &FuncType) -> String {
    let list = |vs: &[ValType]| {
        vs.iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("({}) -> ({})", list(t.params()), list(t.results()))
}

/// Converts WAT text to wasm; wasm bytes pass through unchanged.
///
/// # Errors
/// [`ModuleError::Malformed`] when the bytes are neither.
pub fn wasm_bytes(code: &[u8]) -> Result<Vec<u8>, ModuleError> {
    if code.starts_with(b"\0asm") {
        return Ok(code.to_vec());
    }
    wat::parse_bytes(code)
        .map(|b| b.into_owned())
        .map_err(|e| ModuleError::Malformed(format!("neither wasm nor valid WAT: {e}")))
}

/// Checks a wasm module's structure against the interface.
///
/// # Errors
/// [`ModuleError`] naming the first problem found.
pub fn check_module(code: &[u8]) -> Result<ModuleInfo, ModuleError> {
    if code.len() > CODE_BYTES_MAX {
        return Err(ModuleError::TooLarge {
            len: code.len(),
            max: CODE_BYTES_MAX,
        });
    }
    let mut types: Vec<FuncType> = Vec::new();
    let mut func_types: Vec<u32> = Vec::new();
    let mut memories = 0usize;
    let mut tables = 0usize;
    let mut memory_bytes = 0u64;
    let mut exports = Vec::new();
    for payload in Parser::new(0).parse_all(code) {
        match payload.map_err(malformed)? {
            Payload::TypeSection(r) => {
                for t in r.into_iter_err_on_gc_types() {
                    types.push(t.map_err(malformed)?);
                }
            }
            Payload::ImportSection(r) => {
                for import in r.into_imports() {
                    let import = import.map_err(malformed)?;
                    let forbidden = || ModuleError::ForbiddenImport {
                        module: import.module.to_owned(),
                        name: import.name.to_owned(),
                    };
                    let host = abi::host_function(import.name)
                        .filter(|_| import.module == abi::IMPORT_MODULE)
                        .ok_or_else(forbidden)?;
                    let TypeRef::Func(idx) = import.ty else {
                        return Err(forbidden());
                    };
                    let ty = usize::try_from(idx)
                        .ok()
                        .and_then(|i| types.get(i))
                        .ok_or_else(|| ModuleError::Malformed("import type out of range".into()))?;
                    let params: Option<Vec<_>> = ty.params().iter().map(|v| abi_type(*v)).collect();
                    let results: Option<Vec<_>> =
                        ty.results().iter().map(|v| abi_type(*v)).collect();
                    if params.as_deref() != Some(host.params)
                        || results.as_deref() != Some(host.results)
                    {
                        return Err(ModuleError::ImportType {
                            name: import.name.to_owned(),
                            expected: abi::signature_text(host),
                            found: type_text(ty),
                        });
                    }
                    func_types.push(idx);
                }
            }
            Payload::FunctionSection(r) => {
                for f in r {
                    func_types.push(f.map_err(malformed)?);
                }
            }
            Payload::TableSection(r) => {
                for t in r {
                    let t = t.map_err(malformed)?;
                    tables += 1;
                    if tables > 1 {
                        return Err(refused("more than one table"));
                    }
                    if t.ty.initial > TABLE_ELEMENTS_MAX {
                        return Err(refused(format!(
                            "a table of {} elements is more than TABLE_ELEMENTS_MAX ({TABLE_ELEMENTS_MAX})",
                            t.ty.initial
                        )));
                    }
                }
            }
            Payload::MemorySection(r) => {
                for m in r {
                    let m = m.map_err(malformed)?;
                    memories += 1;
                    if memories > 1 {
                        return Err(refused("more than one memory"));
                    }
                    if m.shared {
                        return Err(refused("shared memory is not allowed"));
                    }
                    if m.memory64 {
                        return Err(refused("64-bit memory is not allowed"));
                    }
                    if m.initial > MEMORY_PAGES_MAX {
                        return Err(refused(format!(
                            "memory of {} pages is more than MEMORY_PAGES_MAX ({MEMORY_PAGES_MAX})",
                            m.initial
                        )));
                    }
                    memory_bytes = m.initial * WASM_PAGE_BYTES;
                }
            }
            Payload::ExportSection(r) => {
                for e in r {
                    let e = e.map_err(malformed)?;
                    exports.push((e.name.to_owned(), e.kind, e.index));
                }
            }
            Payload::StartSection { .. } => return Err(refused("a start function is not allowed")),
            Payload::DataSection(r) => {
                for d in r {
                    let d = d.map_err(malformed)?;
                    check_data_segment(&d, memory_bytes)?;
                }
            }
            _ => {}
        }
    }
    if memories == 0 {
        return Err(refused("the module defines no memory"));
    }
    let mut info = ModuleInfo {
        methods: Vec::new(),
        has_init: false,
    };
    let mut memory_exported = false;
    for (name, kind, index) in exports {
        match kind {
            ExternalKind::Memory if name == MEMORY_EXPORT => memory_exported = true,
            ExternalKind::Func | ExternalKind::FuncExact => {
                let ty = usize::try_from(index)
                    .ok()
                    .and_then(|i| func_types.get(i))
                    .and_then(|&t| usize::try_from(t).ok())
                    .and_then(|t| types.get(t))
                    .ok_or_else(|| {
                        ModuleError::Malformed(format!("export {name:?} has no type"))
                    })?;
                if !(ty.params().is_empty() && ty.results().is_empty()) {
                    continue;
                }
                if name == abi::INIT_METHOD {
                    info.has_init = true;
                } else if name.is_empty() || name.len() > METHOD_NAME_BYTES_MAX {
                    return Err(refused(format!(
                        "method name {name:?} must be 1 to {METHOD_NAME_BYTES_MAX} bytes"
                    )));
                } else {
                    info.methods.push(name);
                }
            }
            _ => {}
        }
    }
    if !memory_exported {
        return Err(refused(
            "the module does not export its memory as \"memory\"",
        ));
    }
    Ok(info)
}

/// An active data segment at a constant offset must fit the memory's initial size:
/// refused here with a clear message rather than trapping in every instantiation.
fn check_data_segment(d: &wasmparser::Data<'_>, memory_bytes: u64) -> Result<(), ModuleError> {
    let DataKind::Active { offset_expr, .. } = &d.kind else {
        return Ok(());
    };
    let mut ops = offset_expr.get_operators_reader();
    let offset = match ops.read().map_err(malformed)? {
        Operator::I32Const { value } => u64::from(value.cast_unsigned()),
        _ => return Ok(()),
    };
    let len = u64::try_from(d.data.len()).unwrap_or(u64::MAX);
    if offset.saturating_add(len) > memory_bytes {
        return Err(refused(format!(
            "data segment at {offset} of {len} bytes does not fit the memory's initial {memory_bytes} bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(wat: &str) -> Result<ModuleInfo, ModuleError> {
        check_module(&wasm_bytes(wat.as_bytes()).unwrap())
    }

    #[test]
    fn accepts_a_plain_contract_and_lists_methods() {
        let info = check(
            r#"(module (import "semel" "input_len" (func (result i32)))
                (memory (export "memory") 1)
                (func (export "init")) (func (export "inc")) (func (export "helper") (param i32)))"#,
        )
        .unwrap();
        assert_eq!(info.methods, vec!["inc".to_owned()]);
        assert!(info.has_init);
    }

    #[test]
    fn refusals_name_the_problem() {
        let e = check(r#"(module (import "env" "abort" (func)) (memory (export "memory") 1))"#)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "import env.abort is not part of the Semel ABI"
        );
        let e = check(r#"(module (import "semel" "version" (func (result i32))) (memory (export "memory") 1))"#)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "import semel.version has type () -> (i32), the ABI says () -> (i64)"
        );
        let e = check(r#"(module (memory (export "memory") 1) (func $s) (start $s))"#).unwrap_err();
        assert!(e.to_string().contains("start function"), "{e}");
        let e = check(r#"(module (memory 1))"#).unwrap_err();
        assert!(e.to_string().contains("does not export its memory"), "{e}");
        let e = check(r#"(module (memory (export "memory") 257))"#).unwrap_err();
        assert!(e.to_string().contains("MEMORY_PAGES_MAX"), "{e}");
        let e = check(r#"(module (func))"#).unwrap_err();
        assert!(e.to_string().contains("no memory"), "{e}");
        assert!(matches!(
            check_module(b"\0asm\x01\0\0\0\x05"),
            Err(ModuleError::Malformed(_))
        ));
        assert!(matches!(
            wasm_bytes(b"(module"),
            Err(ModuleError::Malformed(_))
        ));
    }
}
