//! Names in transactions: contracts (`[A-Za-z0-9_.-]{1,64}`) and methods (1 to 64
//! bytes), checked before anything is recorded (interface §1).

use crate::error::InputError;
use crate::limits::{CONTRACT_NAME_BYTES_MAX, METHOD_NAME_BYTES_MAX};

/// Checks a contract name: 1 to 64 characters of `[A-Za-z0-9_.-]`.
///
/// # Errors
/// [`InputError::BadContractName`] saying what is wrong.
pub fn check_contract_name(name: &str) -> Result<(), InputError> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > CONTRACT_NAME_BYTES_MAX {
        Some("it is longer than 64 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        Some("only A-Z, a-z, 0-9, '_', '.' and '-' are allowed")
    } else {
        None
    };
    match why {
        Some(why) => Err(InputError::BadContractName {
            name: name.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

/// Checks a method name: 1 to 64 bytes.
///
/// # Errors
/// [`InputError::BadMethodName`] saying what is wrong.
pub fn check_method_name(name: &str) -> Result<(), InputError> {
    let why = if name.is_empty() {
        "it is empty"
    } else if name.len() > METHOD_NAME_BYTES_MAX {
        "it is longer than 64 bytes"
    } else {
        return Ok(());
    };
    Err(InputError::BadMethodName {
        name: name.to_owned(),
        why,
    })
}
