//! Multilingual templates: created, changed (each change kept as a version) and deleted
//! with their audit entry; variables and tags checked before anything is stored.

use std::collections::BTreeMap;

use ee_core::timefmt::to_rfc3339;
use ee_core::{design, template};
use ee_store::templates::{self, Content};
pub use ee_store::templates::{Template, Version};
use ee_store::{AnyConnection, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::campaigns::rendering::declared_variables;
use crate::error::AppError;
use crate::input::{invalid, required};
use crate::read::Read;
use crate::write::{Deletable, Write};

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateOut {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub language: String,
    /// Absent for the language's general template.
    pub category: Option<String>,
    pub subject: String,
    pub html: String,
    pub text: Option<String>,
    /// Declared custom variables and their defaults.
    #[schema(value_type = Object)]
    pub variables: BTreeMap<String, Option<String>>,
    pub from_name: Option<String>,
    pub from_email: Option<String>,
    pub reply_to: Option<String>,
    /// The blocks the HTML is rendered from, as the visual editor arranges them
    /// (`heading`, `text`, `image`, `button`, `columns`, `divider`, `spacer`, `footer`);
    /// absent when the HTML is written by hand.
    #[schema(value_type = Option<Object>)]
    pub design: Option<Value>,
    pub version: i64,
    pub active: bool,
    /// Written right to left (Arabic).
    pub rtl: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Template> for TemplateOut {
    fn from(t: Template) -> Self {
        Self {
            variables: declared_variables(&t.variables),
            design: t
                .design
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok()),
            rtl: template::is_rtl(&t.language),
            id: t.id,
            tenant_id: t.tenant_id,
            name: t.name,
            language: t.language,
            category: t.category,
            subject: t.subject,
            html: t.html_content,
            text: t.text_content,
            from_name: t.from_name,
            from_email: t.from_email,
            reply_to: t.reply_to,
            version: t.version,
            active: t.is_active,
            created_at: to_rfc3339(t.created_at),
            updated_at: to_rfc3339(t.updated_at),
        }
    }
}

/// Seed 004's shape `{name, subject, html, language, tenant}` and the rest.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateIn {
    pub name: Option<String>,
    pub subject: Option<String>,
    /// The HTML body, written by hand (a design saved before is dropped) …
    pub html: Option<String>,
    /// … or the blocks it is rendered from (see `TemplateOut.design`): give one of the
    /// two.
    #[schema(value_type = Option<Object>)]
    pub design: Option<Value>,
    /// One of fr, en, es, de, pt, ru, zh, hi, ar (any case).
    pub language: Option<String>,
    /// Tenant slug or id (admins; others default to their own).
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    /// e.g. blogger, media; absent or `general` for the language's general template.
    pub category: Option<String>,
    /// The text part; generated from the HTML when absent.
    pub text: Option<String>,
    pub from_name: Option<String>,
    pub from_email: Option<String>,
    pub reply_to: Option<String>,
    /// Custom variables the template may use: `{"PROFILE_URL": "https://…"}` (default
    /// value or null) or `["PROFILE_URL"]`.
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Value>,
    pub active: Option<bool>,
}

fn variables_json(value: Option<&Value>) -> Result<String, AppError> {
    let map: BTreeMap<String, Option<String>> = match value {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::Null => Ok((k.clone(), None)),
                Value::String(s) => Ok((k.clone(), Some(s.clone()))),
                _ => Err(invalid(
                    "variables",
                    format!("the default of {k} must be a string or null"),
                )),
            })
            .collect::<Result<_, AppError>>()?,
        Some(Value::Array(names)) => names
            .iter()
            .map(|n| {
                n.as_str()
                    .map(|s| (s.to_owned(), None))
                    .ok_or_else(|| invalid("variables", "names must be strings"))
            })
            .collect::<Result<_, AppError>>()?,
        Some(_) => {
            return Err(invalid(
                "variables",
                "must be an object (name → default) or a list of names",
            ));
        }
    };
    for name in map.keys() {
        let ok = name.starts_with(|c: char| c.is_ascii_uppercase())
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(invalid(
                "variables",
                format!("`{name}`: variable names are upper case, digits and _, e.g. PROFILE_URL"),
            ));
        }
    }
    Ok(serde_json::to_string(&map).unwrap_or_else(|_| "{}".into()))
}

/// One of the nine languages, or 422 naming `language`.
pub fn language_of(value: &str) -> Result<&'static str, AppError> {
    template::language(value).ok_or_else(|| {
        invalid(
            "language",
            format!("`{value}` is not one of {}", template::LANGUAGES.join(", ")),
        )
    })
}

fn check_address(value: Option<&str>, field: &str) -> Result<(), AppError> {
    if let Some(v) = value
        && ee_core::contacts::normalize(v, Default::default()).is_err()
    {
        return Err(invalid(field, "is not a valid address"));
    }
    Ok(())
}

/// A design read and checked, or 422 naming the place of its problem
/// (`design.blocks[2].href`).
pub fn design_of(value: &Value) -> Result<design::Design, AppError> {
    design::parse(value).map_err(|e| {
        let field = if e.path.is_empty() {
            "design".to_owned()
        } else {
            format!("design.{}", e.path)
        };
        invalid(&field, e.problem)
    })
}

/// The body to store: hand-written HTML and no design, or a design and the HTML it
/// renders to in `language`.
fn body_of(
    html: Option<&str>,
    design: Option<&Value>,
    language: &str,
) -> Result<Option<(String, Option<String>)>, AppError> {
    match (html, design) {
        (Some(_), Some(_)) => Err(invalid(
            "design",
            "give html or design, not both: the HTML of a design is rendered from its blocks",
        )),
        (None, Some(value)) => {
            let d = design_of(value)?;
            let stored = serde_json::to_string(&d).unwrap_or_default();
            Ok(Some((design::render(&d, language), Some(stored))))
        }
        (Some(h), None) => Ok(Some((h.to_owned(), None))),
        (None, None) => Ok(None),
    }
}

/// Unknown variables and broken tags are refused, naming them.
fn check_content(content: &Content<'_>) -> Result<(), AppError> {
    let declared = declared_variables(content.variables);
    let problems = template::check(
        [
            ("subject", content.subject),
            ("html", content.html),
            ("text", content.text.unwrap_or("")),
        ],
        &declared,
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(AppError::Template(problems))
    }
}

/// A category as stored: lower case; none for the language's general template.
pub fn normalized_category(category: Option<&str>) -> Option<String> {
    category
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "general")
}

/// Adds a template to `tenant_id`.
pub async fn create(
    w: &mut Write,
    tenant_id: &str,
    input: &TemplateIn,
) -> Result<TemplateOut, AppError> {
    let name = required(&input.name, "name")?;
    let subject = required(&input.subject, "subject")?;
    let language = language_of(required(&input.language, "language")?)?;
    let html = input.html.as_deref().filter(|h| !h.trim().is_empty());
    let (html, design) = match body_of(html, input.design.as_ref(), language)? {
        Some(body) => body,
        None => return Err(invalid("html", "is required (or a design)")),
    };
    check_address(input.from_email.as_deref(), "from_email")?;
    check_address(input.reply_to.as_deref(), "reply_to")?;
    let variables = variables_json(input.variables.as_ref())?;
    let category = normalized_category(input.category.as_deref());
    let content = Content {
        name,
        language,
        category: category.as_deref(),
        subject,
        html: &html,
        text: input.text.as_deref().filter(|t| !t.trim().is_empty()),
        variables: &variables,
        from_name: input.from_name.as_deref(),
        from_email: input.from_email.as_deref(),
        reply_to: input.reply_to.as_deref(),
        design: design.as_deref(),
    };
    check_content(&content)?;
    let author = w.caller.actor.id.clone();
    let created =
        templates::insert(&mut w.tx, tenant_id, &content, author.as_deref(), w.now).await?;
    let out = TemplateOut::from(created);
    w.created("template.create", &out).await?;
    Ok(out)
}

/// Changes a template: the fields given replace the current ones and a new version is kept.
pub async fn update(w: &mut Write, id: &str, input: &TemplateIn) -> Result<TemplateOut, AppError> {
    if input.tenant_id.is_some() {
        return Err(invalid(
            "tenant_id",
            "a template cannot move to another tenant",
        ));
    }
    let current: Template = w.find(id).await?;
    let before = TemplateOut::from(current.clone());
    let variables = match &input.variables {
        Some(v) => variables_json(Some(v))?,
        None => current.variables.clone(),
    };
    let language = match &input.language {
        Some(l) => language_of(l)?,
        None => language_of(&current.language)?,
    };
    let category = match &input.category {
        Some(c) => normalized_category(Some(c)),
        None => current.category.clone(),
    };
    let pick = |given: &Option<String>, now: &Option<String>| -> Option<String> {
        given.clone().or_else(|| now.clone())
    };
    check_address(input.from_email.as_deref(), "from_email")?;
    check_address(input.reply_to.as_deref(), "reply_to")?;
    let name = input.name.clone().unwrap_or(current.name.clone());
    let subject = input.subject.clone().unwrap_or(current.subject.clone());
    // The body: the HTML or the design given; else the design kept, rendered again (the
    // language may have changed), or the HTML kept.
    let kept_design = current
        .design
        .as_deref()
        .and_then(|d| serde_json::from_str::<Value>(d).ok());
    let (html, design) = match body_of(input.html.as_deref(), input.design.as_ref(), language)? {
        Some(body) => body,
        None => match kept_design {
            Some(d) => body_of(None, Some(&d), language)?.unwrap_or_default(),
            None => (current.html_content.clone(), None),
        },
    };
    let text = pick(&input.text, &current.text_content).filter(|t| !t.trim().is_empty());
    let from_name = pick(&input.from_name, &current.from_name);
    let from_email = pick(&input.from_email, &current.from_email);
    let reply_to = pick(&input.reply_to, &current.reply_to);
    for (field, value) in [("name", &name), ("subject", &subject), ("html", &html)] {
        if value.trim().is_empty() {
            return Err(invalid(field, "must not be empty"));
        }
    }
    let content = Content {
        name: name.trim(),
        language,
        category: category.as_deref(),
        subject: &subject,
        html: &html,
        text: text.as_deref(),
        variables: &variables,
        from_name: from_name.as_deref(),
        from_email: from_email.as_deref(),
        reply_to: reply_to.as_deref(),
        design: design.as_deref(),
    };
    check_content(&content)?;
    let active = input.active.unwrap_or(current.is_active);
    let author = w.caller.actor.id.clone();
    let updated = templates::update(
        &mut w.tx,
        &current,
        &content,
        active,
        author.as_deref(),
        w.now,
    )
    .await?;
    let out = TemplateOut::from(updated);
    w.changed("template.update", &before, &out).await?;
    Ok(out)
}

impl Deletable for Template {
    const DELETED: &'static str = "template.delete";
    type Out = TemplateOut;

    async fn delete(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
        templates::delete(conn, id).await
    }
}

crate::write::audited!(TemplateOut, "template");

/// Templates (of one tenant, or of all: an administrator naming none), of a language and
/// category when given.
pub async fn list(
    read: &mut Read,
    tenant_id: Option<&str>,
    language: Option<&str>,
    category: Option<&str>,
) -> Result<Vec<Template>, AppError> {
    let filter = templates::Filter {
        tenant_id,
        language,
        category,
        active: false,
    };
    Ok(templates::list(read.conn(), &filter).await?)
}

/// A template's versions, the latest first.
pub async fn versions(read: &mut Read, t: &Template) -> Result<Vec<Version>, AppError> {
    Ok(templates::versions(read.conn(), &t.id).await?)
}

/// A tenant's active template for a language and category, by the fallback of
/// `rendering::select_template`, with the level it was found at.
pub async fn select(
    read: &mut Read,
    tenant_id: &str,
    language: &str,
    category: Option<&str>,
) -> Result<Option<(Template, template::Level)>, AppError> {
    Ok(
        crate::campaigns::rendering::select_template(read.conn(), tenant_id, language, category)
            .await?,
    )
}
