//! XML plumbing: decoding by the declared encoding, a pre-scan that bounds nesting depth and
//! spots DTDs before a tree is built, line/column lookup, and namespace-aware node helpers.

use std::borrow::Cow;

use roxmltree::Node;

use super::Error;
use crate::model::Pos;

pub(crate) const BPMN: &str = "http://www.omg.org/spec/BPMN/20100524/MODEL";
pub(crate) const BPMNDI: &str = "http://www.omg.org/spec/BPMN/20100524/DI";
pub(crate) const DC: &str = "http://www.omg.org/spec/DD/20100524/DC";
pub(crate) const DI: &str = "http://www.omg.org/spec/DD/20100524/DI";
pub(crate) const ZEEBE: &str = "http://camunda.org/schema/zeebe/1.0";
pub(crate) const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Byte offsets of line starts, for turning offsets into `line:col` in O(log n).
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> LineIndex<'a> {
        let mut starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                starts.push(i + 1);
            }
        }
        LineIndex { text, starts }
    }

    pub(crate) fn pos(&self, offset: usize) -> Pos {
        let line = self
            .starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1);
        let start = self.starts[line];
        let end = offset.min(self.text.len());
        let col = self
            .text
            .get(start..end)
            .map_or(end - start, |s| s.chars().count())
            + 1;
        Pos {
            line: (line + 1) as u32,
            col: col as u32,
        }
    }

    pub(crate) fn node_pos(&self, node: Node<'_, '_>) -> Pos {
        self.pos(node.range().start)
    }
}

/// Turns the file's bytes into text by its BOM or XML declaration. UTF-8 must be valid.
pub(crate) fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, Error> {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        return decode_with(encoding, &bytes[bom..]);
    }
    let declared = declared_encoding(bytes);
    let encoding = match declared {
        Some(label) => encoding_rs::Encoding::for_label(label.as_bytes()).ok_or_else(|| Error::Encoding {
            line: 1,
            col: 1,
            message: format!("the XML declaration names encoding \"{label}\", which is unknown; save the file as UTF-8"),
        })?,
        None => encoding_rs::UTF_8,
    };
    decode_with(encoding, bytes)
}

fn decode_with<'b>(
    encoding: &'static encoding_rs::Encoding,
    bytes: &'b [u8],
) -> Result<Cow<'b, str>, Error> {
    if encoding == encoding_rs::UTF_8 {
        return match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Cow::Borrowed(s)),
            Err(e) => {
                let good = &bytes[..e.valid_up_to()];
                // Everything before the bad byte is valid UTF-8, so positions are exact.
                let prefix = std::str::from_utf8(good).unwrap_or_default();
                let pos = LineIndex::new(prefix).pos(prefix.len());
                Err(Error::Encoding {
                    line: pos.line,
                    col: pos.col,
                    message: format!(
                        "byte 0x{:02X} is not valid UTF-8, and the file declares (or defaults to) UTF-8; re-save it as UTF-8 or declare its real encoding",
                        bytes[e.valid_up_to()]
                    ),
                })
            }
        };
    }
    let (text, _, had_errors) = encoding.decode(bytes);
    if had_errors {
        return Err(Error::Encoding {
            line: 1,
            col: 1,
            message: format!(
                "the file is not valid {}; re-save it as UTF-8",
                encoding.name()
            ),
        });
    }
    Ok(text)
}

/// The `encoding="..."` of an `<?xml ...?>` declaration at the start of the bytes.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(256)];
    let head = String::from_utf8_lossy(head);
    let decl_end = head.find("?>")?;
    let decl = &head[..decl_end];
    if !decl.trim_start().starts_with("<?xml") {
        return None;
    }
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next()?;
    if quote != '"' && quote != '\'' {
        return None;
    }
    let value = &rest[1..];
    let end = value.find(quote)?;
    Some(value[..end].to_owned())
}

/// Scans the text once, before any tree is built: refuses nesting deeper than `max_depth` and
/// DOCTYPE declarations. Comments, CDATA, processing instructions and quoted attribute values
/// are skipped so that their contents are never mistaken for tags.
pub(crate) fn check_depth(
    text: &str,
    max_depth: usize,
    lines: &LineIndex<'_>,
) -> Result<(), Error> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut depth: usize = 0;
    while let Some(off) = memchr(b'<', &b[i..]) {
        let at = i + off;
        let rest = &b[at..];
        if rest.starts_with(b"<!--") {
            i = find(b, at + 4, b"-->").map_or(b.len(), |e| e + 3);
        } else if rest.starts_with(b"<![CDATA[") {
            i = find(b, at + 9, b"]]>").map_or(b.len(), |e| e + 3);
        } else if rest.starts_with(b"<?") {
            i = find(b, at + 2, b"?>").map_or(b.len(), |e| e + 2);
        } else if rest.starts_with(b"<!DOCTYPE") || rest.starts_with(b"<!doctype") {
            let pos = lines.pos(at);
            return Err(Error::Dtd {
                line: pos.line,
                col: pos.col,
            });
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            i = at + 2;
        } else {
            // A start tag: find its end, skipping quoted attribute values.
            let mut j = at + 1;
            let mut quote: Option<u8> = None;
            let mut self_closing = false;
            while j < b.len() {
                let c = b[j];
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => {}
                    None if c == b'"' || c == b'\'' => quote = Some(c),
                    None if c == b'>' => {
                        self_closing = j > 0 && b[j - 1] == b'/';
                        break;
                    }
                    None => {}
                }
                j += 1;
            }
            if !self_closing {
                depth += 1;
                if depth > max_depth {
                    let pos = lines.pos(at);
                    return Err(Error::TooDeep {
                        line: pos.line,
                        col: pos.col,
                        limit: max_depth,
                    });
                }
            }
            i = j + 1;
        }
        if i >= b.len() {
            break;
        }
    }
    Ok(())
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&c| c == needle)
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if from >= hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Where a DOCTYPE starts, if the text has one (the depth scan reports it first; this is for
/// callers that skip that scan).
pub(crate) fn find_doctype(text: &str) -> Option<usize> {
    text.find("<!DOCTYPE")
}

/// roxmltree's message without its trailing position (we print our own).
pub(crate) fn describe_xml_error(e: &roxmltree::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at ") {
        Some(i) if s[i + 4..].chars().all(|c| c.is_ascii_digit() || c == ':') => s[..i].to_owned(),
        _ => s,
    }
}

/// Is this a BPMN-namespace element with the given local name?
pub(crate) fn is_bpmn(node: Node<'_, '_>, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(BPMN)
}

pub(crate) fn is_in(node: Node<'_, '_>, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(ns)
}

/// Child elements in the BPMN namespace with the given local name.
pub(crate) fn bpmn_children<'a, 'i>(
    node: Node<'a, 'i>,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(move |c| is_bpmn(*c, name))
}

/// An attribute without namespace, trimmed; empty values count as missing.
pub(crate) fn attr<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.attribute(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// A reference attribute (`sourceRef="x"`), without any `prefix:` that some tools add.
pub(crate) fn ref_attr<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    attr(node, name).map(strip_prefix)
}

pub(crate) fn strip_prefix(id: &str) -> &str {
    match id.split_once(':') {
        Some((prefix, rest)) if !prefix.is_empty() && !rest.is_empty() && !prefix.contains(' ') => {
            rest
        }
        _ => id,
    }
}

/// The text content of an element, trimmed; `None` when empty.
pub(crate) fn text<'a>(node: Node<'a, '_>) -> Option<&'a str> {
    node.text().map(str::trim).filter(|t| !t.is_empty())
}

pub(crate) fn bool_attr(node: Node<'_, '_>, name: &str, default: bool) -> bool {
    match attr(node, name) {
        Some(v) => v.eq_ignore_ascii_case("true"),
        None => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters() {
        let text = "ab\ncdé\nf";
        let idx = LineIndex::new(text);
        assert_eq!(idx.pos(0), Pos { line: 1, col: 1 });
        assert_eq!(idx.pos(3), Pos { line: 2, col: 1 });
        assert_eq!(idx.pos(text.find('f').unwrap()), Pos { line: 3, col: 1 });
    }

    #[test]
    fn depth_scan_ignores_tags_in_comments_and_attributes() {
        let text = "<a x='<b>'><!-- <c><c><c> --><d/><![CDATA[<e><e>]]></a>";
        check_depth(text, 1, &LineIndex::new(text)).unwrap();
        let deep = "<a><b><c></c></b></a>";
        assert!(matches!(
            check_depth(deep, 2, &LineIndex::new(deep)),
            Err(Error::TooDeep { .. })
        ));
    }

    #[test]
    fn declared_encodings_are_read() {
        assert_eq!(
            declared_encoding(b"<?xml version=\"1.0\" encoding='ISO-8859-1'?><a/>"),
            Some("ISO-8859-1".into())
        );
        let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a n=\"\xe9\"/>";
        assert!(decode(latin1).unwrap().contains('\u{e9}'));
        let bad = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a n=\"\xe9\"/>";
        let err = decode(bad).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Encoding {
                    line: 2,
                    col: 7,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
