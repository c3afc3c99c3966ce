//! A design read from JSON with the place of each problem. The blocks are walked here
//! rather than by serde's internally tagged enums, which buffer a block's fields and so
//! lose the field a problem is in (`blocks[0]` instead of `blocks[0].color`); each
//! block's own fields are read by serde, their path kept by `serde_path_to_error`.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{Block, Column, Columns, Design, DesignError, KINDS, Style};

fn join(prefix: &str, name: &str) -> String {
    match (prefix.is_empty(), name.starts_with('[')) {
        (true, _) => name.to_owned(),
        (false, true) => format!("{prefix}{name}"),
        (false, false) => format!("{prefix}.{name}"),
    }
}

/// One struct read by serde, its problems placed under `prefix`.
fn typed<T: DeserializeOwned>(value: &Value, prefix: &str) -> Result<T, DesignError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner == "." {
            prefix.to_owned()
        } else {
            join(prefix, &inner)
        };
        DesignError::at(&path, e.into_inner().to_string())
    })
}

fn object<'a>(
    value: &'a Value,
    path: &str,
    what: &str,
) -> Result<&'a Map<String, Value>, DesignError> {
    value
        .as_object()
        .ok_or_else(|| DesignError::at(path, format!("must be an object ({what})")))
}

fn only(map: &Map<String, Value>, path: &str, allowed: &[&str]) -> Result<(), DesignError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(DesignError::at(
            &join(path, k),
            format!("unknown field `{k}`, expected {}", allowed.join(" or ")),
        )),
        None => Ok(()),
    }
}

pub(super) fn design(value: &Value) -> Result<Design, DesignError> {
    let map = object(value, "", "with blocks and a style")?;
    only(map, "", &["style", "blocks"])?;
    let style = match map.get("style") {
        None | Some(Value::Null) => Style::default(),
        Some(v) => typed(v, "style")?,
    };
    let blocks = blocks(map.get("blocks"), "blocks")?;
    Ok(Design { style, blocks })
}

fn blocks(value: Option<&Value>, path: &str) -> Result<Vec<Block>, DesignError> {
    let items = value
        .and_then(Value::as_array)
        .ok_or_else(|| DesignError::at(path, "must be a list of blocks"))?;
    // Bounded before reading: a list far too long is refused without walking it.
    if items.len() > super::MAX_BLOCKS {
        return Err(DesignError::at(
            path,
            format!(
                "has {} blocks; a design has at most {}",
                items.len(),
                super::MAX_BLOCKS
            ),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| block(item, &format!("{path}[{i}]")))
        .collect()
}

fn block(value: &Value, path: &str) -> Result<Block, DesignError> {
    let map = object(value, path, "a block")?;
    let kind = map.get("type").and_then(Value::as_str).ok_or_else(|| {
        DesignError::at(
            &join(path, "type"),
            format!("give one of {}", KINDS.join(", ")),
        )
    })?;
    let mut fields = map.clone();
    fields.remove("type");
    let fields = Value::Object(fields);
    Ok(match kind {
        "heading" => Block::Heading(typed(&fields, path)?),
        "text" => Block::Text(typed(&fields, path)?),
        "image" => Block::Image(typed(&fields, path)?),
        "button" => Block::Button(typed(&fields, path)?),
        "divider" => Block::Divider(typed(&fields, path)?),
        "spacer" => Block::Spacer(typed(&fields, path)?),
        "footer" => Block::Footer(typed(&fields, path)?),
        "columns" => {
            let map = object(&fields, path, "a block")?;
            only(map, path, &["columns"])?;
            let list_path = join(path, "columns");
            let list = map
                .get("columns")
                .and_then(Value::as_array)
                .ok_or_else(|| DesignError::at(&list_path, "must be a list of columns"))?;
            if list.len() > 3 {
                return Err(DesignError::at(&list_path, "give 2 or 3 columns"));
            }
            let columns = list
                .iter()
                .enumerate()
                .map(|(c, column)| {
                    let column_path = format!("{list_path}[{c}]");
                    let map = object(column, &column_path, "a column with blocks")?;
                    only(map, &column_path, &["blocks"])?;
                    Ok(Column {
                        blocks: blocks(map.get("blocks"), &join(&column_path, "blocks"))?,
                    })
                })
                .collect::<Result<_, DesignError>>()?;
            Block::Columns(Columns { columns })
        }
        other => {
            return Err(DesignError::at(
                &join(path, "type"),
                format!(
                    "`{}` is not a block; give one of {}",
                    other.chars().take(30).collect::<String>(),
                    KINDS.join(", ")
                ),
            ));
        }
    })
}
