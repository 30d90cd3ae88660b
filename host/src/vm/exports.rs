//! Where a module's memory and methods are, resolved once when it is loaded: a frame then
//! finds its method and memory in an instance by index, not by name.

use std::collections::HashMap;

use wasmtime::{ExternType, Module, ModuleExport};

use crate::vm::abi::MEMORY_EXPORT;

/// A module's memory export and its methods. A method is an exported function without
/// parameters or results: the only kind a call runs.
pub(crate) struct Exports {
    memory: Option<ModuleExport>,
    methods: HashMap<Box<str>, ModuleExport>,
}

impl Exports {
    pub fn of(module: &Module) -> Self {
        let mut memory = None;
        let mut methods = HashMap::new();
        for export in module.exports() {
            let (name, index) = (export.name(), module.get_export_index(export.name()));
            match export.ty() {
                ExternType::Memory(_) if name == MEMORY_EXPORT => memory = index,
                ExternType::Func(f) if f.params().len() == 0 && f.results().len() == 0 => {
                    if let Some(index) = index {
                        methods.insert(name.into(), index);
                    }
                }
                _ => {}
            }
        }
        Self { memory, methods }
    }

    /// The exported memory.
    pub fn memory(&self) -> Option<&ModuleExport> {
        self.memory.as_ref()
    }

    /// The method `name`, if the module exports one.
    pub fn method(&self, name: &str) -> Option<&ModuleExport> {
        self.methods.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::validate;

    #[test]
    fn exports_hold_the_memory_and_only_callable_methods() {
        let (engine, _) = crate::vm::engine::new_engine().unwrap();
        let wat = br#"(module
            (memory (export "memory") 1)
            (global (export "g") i32 (i32.const 0))
            (func (export "run"))
            (func (export "also_run"))
            (func (export "add") (param i32))
            (func (export "get") (result i64) (i64.const 0)))"#;
        let code = validate::wasm_bytes(wat).unwrap();
        let module = Module::new(&engine, &code).unwrap();
        let exports = Exports::of(&module);
        assert!(exports.memory().is_some());
        let mut methods: Vec<_> = exports.methods.keys().map(|k| &**k).collect();
        methods.sort_unstable();
        assert_eq!(methods, ["also_run", "run"]);
        assert!(exports.method("add").is_none() && exports.method("g").is_none());
        let bare = Module::new(&engine, validate::wasm_bytes(b"(module)").unwrap()).unwrap();
        assert!(Exports::of(&bare).memory().is_none());
    }
}
