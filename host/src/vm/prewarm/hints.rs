//! Which code each contract runs, as last seen: what a submitter instantiates ahead of
//! its run (`early.rs`). Only a hint — the run looks the contract up itself (a recorded
//! read) and instantiates anew if the code differs — so it needs none of the contract
//! cache's care.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::state::registry::CONTRACT_CACHE_ENTRIES;
use crate::types::CodeHash;

/// The code each contract was last seen to run, by name: what a submitter instantiates
/// before it takes the writer lock (`early.rs`). Only a hint — the run looks the
/// contract up itself and instantiates anew if the code differs — so it needs none of
/// the contract cache's care. At most [`CONTRACT_CACHE_ENTRIES`].
#[derive(Debug, Default)]
pub(crate) struct CodeHints(RwLock<HashMap<Box<str>, CodeHash>>);

impl CodeHints {
    /// The code `name` last ran, if known.
    pub(crate) fn get(&self, name: &str) -> Option<CodeHash> {
        self.0.read().ok()?.get(name).copied()
    }

    /// Notes that `name` runs `code`.
    pub(crate) fn note(&self, name: &str, code: CodeHash) {
        if let Ok(mut hints) = self.0.write() {
            if hints.len() >= CONTRACT_CACHE_ENTRIES {
                hints.clear();
            }
            hints.insert(name.into(), code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_keep_the_latest_code_and_stay_bounded() {
        let hints = CodeHints::default();
        assert_eq!(hints.get("a"), None);
        hints.note("a", CodeHash([1; 32]));
        hints.note("a", CodeHash([2; 32]));
        assert_eq!(hints.get("a"), Some(CodeHash([2; 32])));
        for i in 0..CONTRACT_CACHE_ENTRIES + 10 {
            hints.note(&format!("c{i}"), CodeHash([3; 32]));
        }
        assert!(hints.0.read().unwrap().len() <= CONTRACT_CACHE_ENTRIES);
    }
}
