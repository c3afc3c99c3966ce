//! Yes/no columns. Both databases store them as INTEGER 0/1 (one DDL for both), and
//! sqlx's `Any` driver decodes a `bool` only from a boolean column, so a row field that
//! is a `bool` reads its column through `Flag` (`#[sqlx(try_from = "Flag")]`), and an
//! optional one through `MaybeFlag`. Writes bind `i64::from(b)`.

use sqlx::any::{Any, AnyTypeInfo, AnyValueRef};
use sqlx::error::BoxDynError;
use sqlx::{Decode, Type, ValueRef};

/// A yes/no column: 0 is no, anything else yes.
pub(crate) struct Flag(bool);

/// A yes/no column that may be NULL (not known yet).
pub(crate) struct MaybeFlag(Option<bool>);

impl From<Flag> for bool {
    fn from(flag: Flag) -> bool {
        flag.0
    }
}

impl From<MaybeFlag> for Option<bool> {
    fn from(flag: MaybeFlag) -> Option<bool> {
        flag.0
    }
}

impl Type<Any> for Flag {
    fn type_info() -> AnyTypeInfo {
        <i64 as Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        <i64 as Type<Any>>::compatible(ty) || <bool as Type<Any>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Any> for Flag {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        if <bool as Type<Any>>::compatible(&value.type_info()) {
            return Ok(Flag(<bool as Decode<Any>>::decode(value)?));
        }
        Ok(Flag(<i64 as Decode<Any>>::decode(value)? != 0))
    }
}

impl Type<Any> for MaybeFlag {
    fn type_info() -> AnyTypeInfo {
        Flag::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        Flag::compatible(ty)
    }
}

impl<'r> Decode<'r, Any> for MaybeFlag {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        if value.is_null() {
            return Ok(MaybeFlag(None));
        }
        Ok(MaybeFlag(Some(Flag::decode(value)?.0)))
    }
}
