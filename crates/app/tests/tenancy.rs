//! The one rule of which tenant a request acts on (`ee_app::access::tenancy`), against a real
//! database: a tenant's caller gets its own and nothing else (another named is "not
//! found", as if absent); an admin names one by id or slug, must name one to act, and
//! reads every tenant when naming none.
#![allow(clippy::unwrap_used)]

use ee_app::AppError;
use ee_app::access::tenancy::{resolve, resolve_view};
use ee_store::Scope;
use ee_store::tenants::{self, NewTenant};
use ee_store::testing::TestDatabase;

#[tokio::test]
async fn each_caller_acts_on_the_tenant_it_may() {
    let test_db = TestDatabase::create().await.unwrap();
    let db = test_db.connect().await.unwrap();
    let mut conn = db.pool().acquire().await.unwrap();
    let new = |name, slug| NewTenant {
        name,
        slug,
        settings: "{}",
    };
    let a = tenants::insert(&mut conn, new("A", "brand-a"), 0)
        .await
        .unwrap();
    let b = tenants::insert(&mut conn, new("B", "brand-b"), 0)
        .await
        .unwrap();
    let own = Scope::Tenant(&a.id);

    // A tenant's caller: its own, named or not, by id or slug; another is not found.
    for named in [None, Some(a.id.as_str()), Some("brand-a")] {
        assert_eq!(
            resolve(&mut conn, own, named, "tenant_id").await.unwrap(),
            a.id
        );
        assert_eq!(
            resolve_view(&mut conn, own, named, "tenant_id")
                .await
                .unwrap(),
            Some(a.id.clone())
        );
    }
    for other in [b.id.as_str(), "brand-b", "nobody"] {
        assert!(matches!(
            resolve(&mut conn, own, Some(other), "tenant_id").await,
            Err(AppError::NotFound("tenant"))
        ));
        assert!(matches!(
            resolve_view(&mut conn, own, Some(other), "tenant_id").await,
            Err(AppError::NotFound("tenant"))
        ));
    }

    // An admin: the one named (id or slug); none named is refused to act, all to read.
    for (named, id) in [
        (b.id.as_str(), &b.id),
        ("brand-b", &b.id),
        ("brand-a", &a.id),
    ] {
        assert_eq!(
            &resolve(&mut conn, Scope::All, Some(named), "tenant_id")
                .await
                .unwrap(),
            id
        );
    }
    match resolve(&mut conn, Scope::All, None, "tenant").await {
        Err(AppError::Invalid(errors)) => {
            assert_eq!(errors.0[0].field, "tenant");
            assert!(errors.0[0].message.contains("required"), "{errors:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        resolve_view(&mut conn, Scope::All, None, "tenant_id")
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        resolve(&mut conn, Scope::All, Some("nobody"), "tenant_id").await,
        Err(AppError::NotFound("tenant"))
    ));
}
