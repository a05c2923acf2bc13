//! Camunda 7 expressions (JUEL: `${...}` or `#{...}`) to FEEL, for the simple ones models are
//! full of: literals, variables and paths, comparisons, `and`/`or`/`not`, `empty`, and
//! `execution.getVariable("x")`. Anything that calls Java is left for a person, with a reason.

/// The FEEL (without the leading `=`) for a JUEL expression, or why there is none.
pub(crate) fn to_feel(text: &str) -> Result<String, String> {
    let t = text.trim();
    let inner = t
        .strip_prefix("${")
        .or_else(|| t.strip_prefix("#{"))
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| format!("'{t}' is not a ${{...}} or #{{...}} expression"))?;
    let tokens = lex(inner)?;
    let mut out = String::new();
    let mut i = 0;
    while i < tokens.len() {
        let tok = &tokens[i];
        let next = tokens.get(i + 1).map(String::as_str);
        let piece: String = match tok.as_str() {
            "==" | "eq" => "=".into(),
            "!=" | "ne" => "!=".into(),
            "&&" | "and" => "and".into(),
            "||" | "or" => "or".into(),
            "gt" => ">".into(),
            "lt" => "<".into(),
            "ge" => ">=".into(),
            "le" => "<=".into(),
            "!" | "not" => {
                // not applies to the operand after it: a path, a literal or a parenthesis.
                let Some(operand) = next else {
                    return Err(format!("'{t}': nothing after '!'"));
                };
                if operand == "(" {
                    let close = matching(&tokens, i + 1)
                        .ok_or_else(|| format!("'{t}': unbalanced parentheses"))?;
                    let inside = to_feel(&format!("${{{}}}", tokens[i + 2..close].join(" ")))?;
                    i = close + 1;
                    push(&mut out, &format!("not({inside})"));
                    continue;
                }
                i += 2;
                push(&mut out, &format!("not({})", operand_of(operand, t)?));
                continue;
            }
            "empty" => {
                let Some(operand) = next else {
                    return Err(format!("'{t}': nothing after 'empty'"));
                };
                let o = operand_of(operand, t)?;
                i += 2;
                push(
                    &mut out,
                    &format!("(is null({o}) or {o} = \"\" or {o} = [])"),
                );
                continue;
            }
            "execution.getVariable" if next == Some("(") => {
                let name = tokens
                    .get(i + 2)
                    .filter(|n| n.starts_with('"'))
                    .ok_or_else(|| format!("'{t}': getVariable needs a variable name"))?;
                if tokens.get(i + 3).map(String::as_str) != Some(")") {
                    return Err(format!("'{t}': getVariable takes one name"));
                }
                i += 4;
                push(&mut out, name.trim_matches('"'));
                continue;
            }
            other => operand_of(other, t).or_else(|e| {
                if matches!(
                    other,
                    "(" | ")" | "<" | ">" | "<=" | ">=" | "+" | "-" | "*" | "/"
                ) {
                    Ok(other.to_owned())
                } else {
                    Err(e)
                }
            })?,
        };
        if next == Some("(") && !matches!(tok.as_str(), "(" | "and" | "or" | "&&" | "||") {
            return Err(format!(
                "'{t}' calls '{tok}(...)', Java code that has no FEEL equivalent; move it to a job worker"
            ));
        }
        push(&mut out, &piece);
        i += 1;
    }
    Ok(out)
}

fn push(out: &mut String, piece: &str) {
    if !out.is_empty() && !out.ends_with('(') && piece != ")" {
        out.push(' ');
    }
    out.push_str(piece);
}

fn matching(tokens: &[String], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.as_str() {
            "(" => depth += 1,
            ")" => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// A literal or a variable path, as FEEL.
fn operand_of(tok: &str, whole: &str) -> Result<String, String> {
    if tok.starts_with('"') {
        return Ok(tok.to_owned());
    }
    if matches!(tok, "true" | "false") {
        return Ok(tok.to_owned());
    }
    if tok == "null" {
        return Ok("null".into());
    }
    if tok.parse::<f64>().is_ok() {
        return Ok(tok.to_owned());
    }
    let path_ok = tok
        .split('.')
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'));
    if path_ok && !tok.starts_with("execution") && !tok.starts_with(char::is_numeric) {
        return Ok(tok.to_owned());
    }
    Err(format!(
        "'{whole}': '{tok}' has no FEEL equivalent; rewrite the expression in FEEL by hand"
    ))
}

/// Tokens: strings (as FEEL double-quoted), numbers and names (with dots), operators.
fn lex(s: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '\'' || c == '"' {
            let mut lit = String::from('"');
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '"' {
                    lit.push('\\');
                }
                lit.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() {
                return Err(format!("'{s}': a string is not closed"));
            }
            lit.push('"');
            out.push(lit);
            i += 1;
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.')) {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        if matches!(two.as_str(), "==" | "!=" | "&&" | "||" | "<=" | ">=") {
            out.push(two);
            i += 2;
            continue;
        }
        if matches!(c, '(' | ')' | '!' | '<' | '>' | '+' | '-' | '*' | '/') {
            out.push(c.to_string());
            i += 1;
            continue;
        }
        return Err(format!("'{s}': '{c}' has no FEEL equivalent here"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::to_feel;

    #[test]
    fn common_conditions_translate() {
        assert_eq!(to_feel("#{true}").as_deref(), Ok("true"));
        assert_eq!(to_feel("${amount > 100}").as_deref(), Ok("amount > 100"));
        assert_eq!(
            to_feel("${order.total ge 10 && express == 'yes'}").as_deref(),
            Ok("order.total >= 10 and express = \"yes\"")
        );
        assert_eq!(to_feel("${!approved}").as_deref(), Ok("not(approved)"));
        assert_eq!(to_feel("${not (a or b)}").as_deref(), Ok("not(a or b)"));
        assert_eq!(
            to_feel("${execution.getVariable(\"paid\") == true}").as_deref(),
            Ok("paid = true")
        );
        assert_eq!(
            to_feel("${empty items}").as_deref(),
            Ok("(is null(items) or items = \"\" or items = [])")
        );
    }

    #[test]
    fn java_calls_are_refused_with_a_reason() {
        let e = to_feel("${paymentService.isPaid(execution)}").expect_err("a call");
        assert!(e.contains("job worker"), "{e}");
        assert!(to_feel("plain text").is_err());
    }
}
