//! The read scope of a request: `ee_app::read::Read` opened for the request's principal
//! (the tenants it may see). A handler finds the rows it shows with `read.find` (another
//! tenant's is a 404, like a missing one) and reads through the stages' read functions.

pub use ee_app::read::Read;

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::state::AppState;

/// How a request opens its read scope.
pub(crate) trait Reading: Sized {
    /// Opens the scope for the request's principal.
    async fn begin(state: &AppState, principal: &Principal) -> ApiResult<Self>;

    /// Opens a scope that sees every tenant: the door's own look-ups before a principal
    /// is known (a credential, a login), and public endpoints reading what a signed token
    /// names.
    async fn unscoped(state: &AppState) -> ApiResult<Self>;
}

impl Reading for Read {
    async fn begin(state: &AppState, principal: &Principal) -> ApiResult<Self> {
        let tenant = principal.scope().tenant().map(str::to_owned);
        Ok(Read::open(&state.db, tenant).await?)
    }

    async fn unscoped(state: &AppState) -> ApiResult<Self> {
        Ok(Read::open(&state.db, None).await?)
    }
}
