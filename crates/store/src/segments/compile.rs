//! The compiler of segment expressions: AND, OR, NOT, tags and the contact's own fields
//! here; custom fields and engagement in their files. Every value goes into a bound
//! parameter (`push`); the SQL text holds only column names, operators and placeholders.

use ee_core::segment::{Expr, Field, Op, Operand, operand};

use crate::Backend;

/// A bound value of compiled SQL.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    Int(i64),
    Float(f64),
}

pub(super) type Sql = std::result::Result<String, String>;

pub(crate) struct Compiler {
    pub(super) params: Vec<Param>,
    first: usize,
    pub(super) now: i64,
    pub(super) backend: Backend,
}

impl Compiler {
    pub(super) fn new(first: usize, now: i64, backend: Backend) -> Self {
        Self {
            params: Vec::new(),
            first,
            now,
            backend,
        }
    }

    /// Binds a value; its placeholder.
    pub(super) fn push(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.first + self.params.len() - 1)
    }

    fn column(field: Field) -> &'static str {
        match field {
            Field::Language => "LOWER(c.language)",
            Field::Country => "LOWER(c.country)",
            Field::Status => "c.status",
            Field::Source => "(SELECT s.slug FROM data_sources s WHERE s.id = c.source_id)",
            Field::Validation => "c.validation_status",
            Field::CreatedAt => "c.created_at",
            Field::EngagedAt => "c.engaged_at",
            Field::Email => "c.email",
            Field::Category => "LOWER(c.category)",
            Field::City => "LOWER(c.city)",
        }
    }

    pub(super) fn expr(&mut self, e: &Expr) -> Sql {
        Ok(match e {
            Expr::And { and } => self.join(and, " AND ")?,
            Expr::Or { or } => self.join(or, " OR ")?,
            Expr::Not { not } => format!("(NOT {})", self.expr(not)?),
            Expr::Tag { tag } => {
                let slug = ee_core::tags::parse(tag).map_err(|e| e.to_string())?.slug();
                let exact = self.push(Param::Text(slug.clone()));
                let prefix = self.push(Param::Text(format!("{slug}/")));
                // Descendants by prefix: a path never contains LIKE's wildcards, but a
                // substring comparison avoids LIKE entirely.
                format!(
                    "EXISTS (SELECT 1 FROM contact_tags ct JOIN tags t ON t.id = ct.tag_id WHERE ct.contact_id = c.id \
                     AND (t.slug = {exact} OR SUBSTR(t.slug, 1, LENGTH({prefix})) = {prefix}))"
                )
            }
            Expr::Field { field, op, value } => {
                let column = Self::column(*field);
                let lower = !matches!(
                    field,
                    Field::Status | Field::Validation | Field::Source | Field::Email
                );
                let operand = operand(*field, *op, value, self.now).map_err(|e| e.to_string())?;
                self.compare(column, *op, operand, lower)
            }
            Expr::Custom { custom, op, value } => self.custom(custom, *op, value)?,
            Expr::Engagement(e) => self.engagement(e),
        })
    }

    fn join(&mut self, items: &[Expr], with: &str) -> Sql {
        Ok(format!(
            "({})",
            items
                .iter()
                .map(|x| self.expr(x))
                .collect::<std::result::Result<Vec<_>, _>>()?
                .join(with)
        ))
    }

    /// `column` (SQL) compared by `op` with a checked operand; text lowered first when
    /// `lower` (the column is then lowered too).
    pub(super) fn compare(
        &mut self,
        column: &str,
        op: Op,
        operand: Operand,
        lower: bool,
    ) -> String {
        let norm = |s: &str| {
            if lower {
                s.to_lowercase()
            } else {
                s.to_owned()
            }
        };
        match operand {
            Operand::None => match op {
                Op::IsNull => format!("({column} IS NULL)"),
                _ => format!("({column} IS NOT NULL)"),
            },
            Operand::Time(t) => {
                let p = self.push(Param::Int(t));
                match op {
                    Op::Before => format!("({column} < {p})"),
                    _ => format!("({column} > {p})"),
                }
            }
            Operand::Number(n) => {
                let p = self.push(Param::Float(n));
                let sign = match op {
                    Op::Gt => ">",
                    Op::Gte => ">=",
                    Op::Lt => "<",
                    _ => "<=",
                };
                format!("({column} {sign} {p})")
            }
            Operand::Text(s) => {
                let needle = norm(&s);
                match op {
                    Op::EndsWith => {
                        let len = self.push(Param::Int(needle.chars().count() as i64));
                        let p = self.push(Param::Text(needle));
                        format!(
                            "(SUBSTR({column}, CAST(LENGTH({column}) - {len} + 1 AS INTEGER)) = {p})"
                        )
                    }
                    Op::StartsWith => {
                        let p = self.push(Param::Text(needle));
                        format!("(SUBSTR({column}, 1, LENGTH({p})) = {p})")
                    }
                    Op::Contains => {
                        let p = self.push(Param::Text(needle));
                        match self.backend {
                            Backend::Sqlite => format!("(INSTR({column}, {p}) > 0)"),
                            Backend::Postgres => format!("(STRPOS({column}, {p}) > 0)"),
                        }
                    }
                    Op::Neq => {
                        let p = self.push(Param::Text(needle));
                        format!("({column} IS NULL OR {column} <> {p})")
                    }
                    _ => {
                        let p = self.push(Param::Text(needle));
                        format!("({column} = {p})")
                    }
                }
            }
            Operand::List(items) => {
                let ps: Vec<String> = items
                    .iter()
                    .map(|s| self.push(Param::Text(norm(s))))
                    .collect();
                match op {
                    Op::NotIn => {
                        format!("({column} IS NULL OR {column} NOT IN ({}))", ps.join(", "))
                    }
                    _ => format!("({column} IN ({}))", ps.join(", ")),
                }
            }
        }
    }
}
