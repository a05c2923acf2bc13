//! The Zeebe dialect: `zeebe:*` extension elements as Camunda Modeler writes them, and the
//! expressions in them (`=` FEEL, static text, and Zeebe 0.x JSONPath such as `$.orderId`).

use roxmltree::Node;

use super::xml::{ZEEBE, attr, is_bpmn, is_in};
use crate::feel::{Expression, Value};

/// The `zeebe:*` children of an element's `extensionElements`.
pub(crate) fn extensions<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children()
        .filter(|c| is_bpmn(*c, "extensionElements"))
        .flat_map(|e| e.children())
        .filter(|c| c.is_element() && c.tag_name().namespace() == Some(ZEEBE))
}

pub(crate) fn extension<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    extensions(node).find(|c| c.tag_name().name() == name)
}

/// Compiles an attribute value the way Zeebe reads it: `=expr` is FEEL, `$.a.b` is a Zeebe 0.x
/// JSONPath (translated to the FEEL path `a.b`), anything else is a static string.
pub(crate) fn expression(text: &str) -> Result<Expression, String> {
    let t = text.trim();
    if let Some(feel) = t.strip_prefix('=') {
        return Expression::parse(feel).map_err(|e| format!("invalid expression '{t}': {e}"));
    }
    if t.starts_with("$.") || t == "$" {
        let feel = json_path_to_feel(t)?;
        return Expression::parse(&feel).map_err(|e| format!("invalid JSONPath '{t}': {e}"));
    }
    Ok(Expression::constant(Value::String(t.to_owned())))
}

/// A sequence-flow condition: `= ...` FEEL, or a Zeebe 0.x JSONPath condition such as
/// `$.total > 100 && $.express == true`, translated to FEEL. Anything else is an error that says
/// how to write it.
pub(crate) fn condition(text: &str) -> Result<Expression, String> {
    let t = text.trim();
    if t.starts_with('=') {
        return expression(t);
    }
    if t.contains("$.") && !t.contains("${") && !t.contains("#{") {
        let feel = legacy_condition_to_feel(t)?;
        return Expression::parse(&feel)
            .map_err(|e| format!("condition '{t}' (read as FEEL '{feel}'): {e}"));
    }
    Err(format!(
        "condition '{t}' is not a FEEL expression; write it as '= ...'"
    ))
}

/// Zeebe 0.x conditions: JSONPath operands, `==`, `!=`, `&&`, `||`, `'` or `"` strings.
fn legacy_condition_to_feel(t: &str) -> Result<String, String> {
    let mut out = String::new();
    let chars: Vec<char> = t.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match (c, next) {
            ('$', Some('.')) => {
                let start = i;
                i += 2;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.' | '[' | ']'))
                {
                    i += 1;
                }
                let path: String = chars[start..i].iter().collect();
                out.push_str(&json_path_to_feel(&path)?);
                continue;
            }
            ('=', Some('=')) => {
                out.push('=');
                i += 2;
                continue;
            }
            ('&', Some('&')) => {
                out.push_str(" and ");
                i += 2;
                continue;
            }
            ('|', Some('|')) => {
                out.push_str(" or ");
                i += 2;
                continue;
            }
            ('\'', _) => {
                out.push('"');
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    if chars[i] == '"' {
                        out.push('\\');
                    }
                    out.push(chars[i]);
                    i += 1;
                }
                out.push('"');
                i += 1;
                continue;
            }
            _ => out.push(c),
        }
        i += 1;
    }
    Ok(out)
}

/// Like [`expression`], but a static value that looks like a number is a number (retries).
pub(crate) fn number_expression(text: &str) -> Result<Expression, String> {
    let t = text.trim();
    if !t.starts_with('=') {
        return t
            .parse::<rust_decimal::Decimal>()
            .map(|n| Expression::constant(Value::Number(n)))
            .map_err(|_| {
                format!("'{t}' is not a number; write a number or an expression starting with '='")
            });
    }
    expression(t)
}

/// `$.order.items[0].id` → `order.items[1].id` (FEEL lists count from 1).
fn json_path_to_feel(path: &str) -> Result<String, String> {
    let rest = path.strip_prefix('$').unwrap_or(path);
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    if rest.is_empty() {
        return Err(
            "the JSONPath '$' (the whole document) has no FEEL equivalent; name a variable"
                .to_owned(),
        );
    }
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '[' => {
                let mut idx = String::new();
                for d in chars.by_ref() {
                    if d == ']' {
                        break;
                    }
                    idx.push(d);
                }
                let n: i64 = idx.trim().parse().map_err(|_| {
                    format!("JSONPath '{path}' uses [{idx}]; only numeric indexes are supported")
                })?;
                out.push_str(&format!("[{}]", n + 1));
            }
            c if c.is_alphanumeric() || c == '_' || c == '.' => out.push(c),
            other => {
                return Err(format!(
                    "JSONPath '{path}' uses '{other}'; only paths like $.a.b[0] are supported"
                ));
            }
        }
    }
    Ok(out)
}

/// A mapping target: `a.b` (or Zeebe 0.x `$.a.b`) as path segments.
pub(crate) fn target_path(text: &str) -> Result<Vec<String>, String> {
    let t = text.trim();
    let t = t.strip_prefix("$.").unwrap_or(t);
    let t = t.strip_prefix('=').unwrap_or(t).trim();
    let parts: Vec<String> = t.split('.').map(|s| s.trim().to_owned()).collect();
    if parts.iter().any(|p| {
        p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
    }) {
        return Err(format!(
            "'{text}' is not a variable name or a path like a.b.c"
        ));
    }
    Ok(parts)
}

/// `zeebe:taskDefinition type="..." retries="..."` (Zeebe 0.x spelled the same).
pub(crate) struct TaskDefinition {
    pub(crate) job_type: Option<String>,
    pub(crate) retries: Option<String>,
}

pub(crate) fn task_definition(node: Node<'_, '_>) -> Option<TaskDefinition> {
    let def = extension(node, "taskDefinition")?;
    Some(TaskDefinition {
        job_type: attr(def, "type").map(str::to_owned),
        retries: attr(def, "retries").map(str::to_owned),
    })
}

/// `zeebe:taskHeaders/zeebe:header key value`, in order.
pub(crate) fn headers(node: Node<'_, '_>) -> Vec<(String, String)> {
    extensions(node)
        .filter(|c| c.tag_name().name() == "taskHeaders")
        .flat_map(|h| h.children())
        .filter(|c| is_in(*c, ZEEBE, "header"))
        .filter_map(|h| {
            Some((
                attr(h, "key")?.to_owned(),
                h.attribute("value").unwrap_or("").to_owned(),
            ))
        })
        .collect()
}

/// The headers Zeebe gives user-task jobs, from `zeebe:assignmentDefinition`,
/// `zeebe:formDefinition` and `zeebe:taskSchedule`.
pub(crate) fn user_task_headers(node: Node<'_, '_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut take = |ext: &str, attr_name: &str, header: &str| {
        if let Some(v) = extension(node, ext).and_then(|e| attr(e, attr_name)) {
            out.push((format!("io.camunda.zeebe:{header}"), v.to_owned()));
        }
    };
    take("assignmentDefinition", "assignee", "assignee");
    take("assignmentDefinition", "candidateGroups", "candidateGroups");
    take("assignmentDefinition", "candidateUsers", "candidateUsers");
    take("formDefinition", "formKey", "formKey");
    take("formDefinition", "formId", "formId");
    take("taskSchedule", "dueDate", "dueDate");
    take("taskSchedule", "followUpDate", "followUpDate");
    out
}

/// `zeebe:ioMapping`: inputs and outputs as (source, target) text pairs.
pub(crate) struct IoMapping<'a> {
    pub(crate) inputs: Vec<(Option<&'a str>, Option<&'a str>, Node<'a, 'a>)>,
    pub(crate) outputs: Vec<(Option<&'a str>, Option<&'a str>, Node<'a, 'a>)>,
}

pub(crate) fn io_mapping<'a>(node: Node<'a, 'a>) -> IoMapping<'a> {
    let mut io = IoMapping {
        inputs: Vec::new(),
        outputs: Vec::new(),
    };
    for m in extensions(node).filter(|c| c.tag_name().name() == "ioMapping") {
        for c in m.children().filter(|c| c.is_element()) {
            let pair = (attr(c, "source"), attr(c, "target"), c);
            match c.tag_name().name() {
                "input" => io.inputs.push(pair),
                "output" => io.outputs.push(pair),
                _ => {}
            }
        }
    }
    io
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_become_feel_paths() {
        assert_eq!(json_path_to_feel("$.traceId").unwrap(), "traceId");
        assert_eq!(
            json_path_to_feel("$.order.items[0].id").unwrap(),
            "order.items[1].id"
        );
        assert!(json_path_to_feel("$.a[?(@.b)]").is_err());
    }

    #[test]
    fn legacy_conditions_become_feel() {
        assert_eq!(
            legacy_condition_to_feel("$.remainingAmount > 0").unwrap(),
            "remainingAmount > 0"
        );
        assert_eq!(
            legacy_condition_to_feel("$.a == 'x' && $.b != 2 || $.c").unwrap(),
            "a = \"x\"  and  b != 2  or  c"
        );
        assert!(condition("${approved}").is_err());
        assert!(condition("= x > 1").is_ok());
    }

    #[test]
    fn static_values_are_strings_and_numbers() {
        assert!(expression("payment").unwrap().is_constant());
        assert!(!expression("= orderId").unwrap().is_constant());
        assert!(number_expression("3").unwrap().is_constant());
        assert!(number_expression("three").is_err());
    }

    #[test]
    fn targets_are_paths() {
        assert_eq!(target_path("a.b").unwrap(), vec!["a", "b"]);
        assert_eq!(target_path("$.a").unwrap(), vec!["a"]);
        assert!(target_path("a b").is_err());
        assert!(target_path("").is_err());
    }
}
