//! A stored name of a closed set (a state, a kind) that may be NULL. A row field of type
//! `Option<E>`, where `E` is one of `core`'s named enums, reads its column through
//! `MaybeName` (`#[sqlx(try_from = "crate::maybe_name::MaybeName")]`): a name `E` does not
//! know fails the read, as it does for a column that may not be NULL.

use ee_core::names::UnknownName;
use sqlx::any::{Any, AnyTypeInfo, AnyValueRef};
use sqlx::error::BoxDynError;
use sqlx::{Decode, Type, ValueRef};

pub(crate) struct MaybeName(Option<String>);

impl<E: TryFrom<String, Error = UnknownName>> TryFrom<MaybeName> for Option<E> {
    type Error = UnknownName;

    fn try_from(name: MaybeName) -> Result<Option<E>, UnknownName> {
        name.0.map(E::try_from).transpose()
    }
}

impl Type<Any> for MaybeName {
    fn type_info() -> AnyTypeInfo {
        <String as Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        <String as Type<Any>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Any> for MaybeName {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        if value.is_null() {
            return Ok(MaybeName(None));
        }
        Ok(MaybeName(Some(<String as Decode<Any>>::decode(value)?)))
    }
}
