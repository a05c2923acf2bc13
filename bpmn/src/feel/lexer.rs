//! Splits FEEL source text into tokens, each with its character column for error messages.

use rust_decimal::Decimal;

use super::Error;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    Number(Decimal),
    String(String),
    /// A name or keyword; keywords are names that the parser recognises in place.
    Name(String),
    /// A name written in backticks: never a keyword.
    QuotedName(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Colon,
    Dot,
    DotDot,
    Plus,
    Minus,
    Star,
    StarStar,
    Slash,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    At,
    Eof,
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    /// 1-based character column where the token starts.
    pub(crate) col: usize,
}

/// Longest expression text accepted; longer input is refused before any work is done.
pub(crate) const MAX_SOURCE_LEN: usize = 64 * 1024;

pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, Error> {
    if src.len() > MAX_SOURCE_LEN {
        return Err(Error::at(
            1,
            format!(
                "expression is {} bytes long; the limit is {MAX_SOURCE_LEN}",
                src.len()
            ),
        ));
    }
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        // Comments: `// ...` and `/* ... */`.
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            loop {
                if i + 1 >= chars.len() {
                    return Err(Error::at(col, "comment is not closed with */"));
                }
                if chars[i] == '*' && chars[i + 1] == '/' {
                    i += 2;
                    break;
                }
                i += 1;
            }
            continue;
        }
        let simple = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            '{' => Some(Tok::LBrace),
            '}' => Some(Tok::RBrace),
            ',' => Some(Tok::Comma),
            ':' => Some(Tok::Colon),
            '+' => Some(Tok::Plus),
            '-' => Some(Tok::Minus),
            '/' => Some(Tok::Slash),
            '=' => Some(Tok::Eq),
            '@' => Some(Tok::At),
            _ => None,
        };
        if let Some(tok) = simple {
            out.push(Token { tok, col });
            i += 1;
            continue;
        }
        match c {
            '*' => {
                if chars.get(i + 1) == Some(&'*') {
                    out.push(Token {
                        tok: Tok::StarStar,
                        col,
                    });
                    i += 2;
                } else {
                    out.push(Token {
                        tok: Tok::Star,
                        col,
                    });
                    i += 1;
                }
            }
            '!' => {
                if chars.get(i + 1) == Some(&'=') {
                    out.push(Token { tok: Tok::Ne, col });
                    i += 2;
                } else {
                    return Err(Error::at(
                        col,
                        "unexpected '!'; did you mean '!=' or not(...)?",
                    ));
                }
            }
            '<' => {
                if chars.get(i + 1) == Some(&'=') {
                    out.push(Token { tok: Tok::Le, col });
                    i += 2;
                } else {
                    out.push(Token { tok: Tok::Lt, col });
                    i += 1;
                }
            }
            '>' => {
                if chars.get(i + 1) == Some(&'=') {
                    out.push(Token { tok: Tok::Ge, col });
                    i += 2;
                } else {
                    out.push(Token { tok: Tok::Gt, col });
                    i += 1;
                }
            }
            '.' => {
                if chars.get(i + 1) == Some(&'.') {
                    out.push(Token {
                        tok: Tok::DotDot,
                        col,
                    });
                    i += 2;
                } else if chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                    let (n, next) = number(&chars, i)?;
                    out.push(Token {
                        tok: Tok::Number(n),
                        col,
                    });
                    i = next;
                } else {
                    out.push(Token { tok: Tok::Dot, col });
                    i += 1;
                }
            }
            '"' => {
                let (s, next) = string(&chars, i)?;
                out.push(Token {
                    tok: Tok::String(s),
                    col,
                });
                i = next;
            }
            '`' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && chars[j] != '`' {
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(Error::at(col, "name in backticks is not closed with `"));
                }
                out.push(Token {
                    tok: Tok::QuotedName(chars[start..j].iter().collect()),
                    col,
                });
                i = j + 1;
            }
            d if d.is_ascii_digit() => {
                let (n, next) = number(&chars, i)?;
                out.push(Token {
                    tok: Tok::Number(n),
                    col,
                });
                i = next;
            }
            n if is_name_start(n) => {
                let start = i;
                while i < chars.len() && is_name_part(chars[i]) {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Name(chars[start..i].iter().collect()),
                    col,
                });
            }
            other => {
                return Err(Error::at(col, format!("unexpected character {other:?}")));
            }
        }
    }
    out.push(Token {
        tok: Tok::Eof,
        col: chars.len() + 1,
    });
    Ok(out)
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '?' || c == '$'
}

fn is_name_part(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '?' || c == '$'
}

fn number(chars: &[char], start: usize) -> Result<(Decimal, usize), Error> {
    let mut i = start;
    while i < chars.len() && chars[i].is_ascii_digit() {
        i += 1;
    }
    // A '.' belongs to the number only when a digit follows: `1..5` is a range.
    if i < chars.len() && chars[i] == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
        i += 1;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
    }
    let mut text: String = chars[start..i].iter().collect();
    if text.starts_with('.') {
        text.insert(0, '0');
    }
    // Exponent, as Zeebe's FEEL accepts (`1e3`, `2.5E-2`).
    if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
        let mut j = i + 1;
        if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
            j += 1;
        }
        if j < chars.len() && chars[j].is_ascii_digit() {
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            let exp: String = chars[i..j].iter().collect();
            let value = Decimal::from_scientific(&format!("{text}{exp}"))
                .map_err(|_| Error::at(start + 1, format!("number {text}{exp} is out of range")))?;
            return Ok((value, j));
        }
    }
    let value = text
        .parse::<Decimal>()
        .map_err(|_| Error::at(start + 1, format!("number {text} is out of range")))?;
    Ok((value, i))
}

fn string(chars: &[char], start: usize) -> Result<(String, usize), Error> {
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => return Ok((out, i + 1)),
            '\\' => {
                let Some(&esc) = chars.get(i + 1) else { break };
                match esc {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    '\\' => out.push('\\'),
                    'u' => {
                        let hex: String = chars.iter().skip(i + 2).take(4).collect();
                        let code = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                        match code {
                            Some(c) if hex.len() == 4 => out.push(c),
                            _ => {
                                return Err(Error::at(
                                    i + 1,
                                    "\\u must be followed by 4 hex digits",
                                ));
                            }
                        }
                        i += 4;
                    }
                    other => {
                        return Err(Error::at(
                            i + 1,
                            format!("unknown escape \\{other} in string"),
                        ));
                    }
                }
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err(Error::at(start + 1, "string is not closed with \""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn ranges_are_not_decimals() {
        assert_eq!(
            toks("[1..5]"),
            vec![
                Tok::LBracket,
                Tok::Number(1.into()),
                Tok::DotDot,
                Tok::Number(5.into()),
                Tok::RBracket,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn strings_unescape() {
        assert_eq!(
            toks(r#""a\"b\u0041""#),
            vec![Tok::String("a\"bA".into()), Tok::Eof]
        );
    }

    #[test]
    fn unclosed_string_is_an_error_with_position() {
        let err = tokenize("x = \"abc").unwrap_err();
        assert_eq!(err.column, 5);
    }
}
