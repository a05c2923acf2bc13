//! BPMN 2.0 XML → [`Definitions`]: decoding, hostile-input limits, then the model builder.
//!
//! Any input gives a model or an [`Error`] with a line and column; nothing panics and nothing
//! takes unbounded memory: the size, nesting depth and node count are capped before and while
//! the XML tree is built, and DTDs (whose entities can expand without bound) are refused.

mod builder;
mod diagram;
mod events;
mod flowmesh;
mod xml;
mod zeebe;

use crate::model::Definitions;

pub(crate) use xml::LineIndex;

/// Bounds on what the parser accepts.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest file, in bytes.
    pub max_bytes: usize,
    /// Deepest element nesting.
    pub max_depth: usize,
    /// Most XML nodes (elements, attributes' parents, text).
    pub max_nodes: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: 16 * 1024 * 1024,
            max_depth: 256,
            max_nodes: 4_000_000,
        }
    }
}

/// Why a file could not be read as BPMN at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("1:1: the file is {size} bytes; the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("{line}:{col}: elements are nested deeper than {limit} levels")]
    TooDeep { line: u32, col: u32, limit: usize },
    #[error("{line}:{col}: the file has more than {limit} XML nodes")]
    TooManyNodes { line: u32, col: u32, limit: u32 },
    #[error(
        "{line}:{col}: DOCTYPE declarations are refused: BPMN files do not use them and their entities can expand without bound; remove the <!DOCTYPE ...> block"
    )]
    Dtd { line: u32, col: u32 },
    #[error("{line}:{col}: {message}")]
    Encoding {
        line: u32,
        col: u32,
        message: String,
    },
    #[error("{line}:{col}: not well-formed XML: {message}")]
    Xml {
        line: u32,
        col: u32,
        message: String,
    },
    #[error(
        "{line}:{col}: the root element is <{found}>; a BPMN file has <definitions> in namespace http://www.omg.org/spec/BPMN/20100524/MODEL"
    )]
    NotBpmn { line: u32, col: u32, found: String },
}

impl Error {
    /// A short stable name of the reason, for counting refusals across many files.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::TooLarge { .. } => "too large",
            Error::TooDeep { .. } => "nested too deep",
            Error::TooManyNodes { .. } => "too many nodes",
            Error::Dtd { .. } => "DOCTYPE",
            Error::Encoding { .. } => "bad encoding",
            Error::Xml { .. } => "not well-formed XML",
            Error::NotBpmn { .. } => "not BPMN",
        }
    }
}

/// Decodes a BPMN file's bytes to text by its BOM or XML declaration (UTF-8 must be valid).
pub fn decode(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, Error> {
    xml::decode(bytes)
}

/// Parses a BPMN file's bytes (any encoding the XML declaration names) with default limits.
pub fn parse_bytes(bytes: &[u8]) -> Result<Definitions, Error> {
    parse_bytes_with(bytes, &Limits::default())
}

pub fn parse_bytes_with(bytes: &[u8], limits: &Limits) -> Result<Definitions, Error> {
    if bytes.len() > limits.max_bytes {
        return Err(Error::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let text = xml::decode(bytes)?;
    parse_with(&text, limits)
}

/// Parses BPMN XML text with default limits.
pub fn parse(text: &str) -> Result<Definitions, Error> {
    parse_with(text, &Limits::default())
}

pub fn parse_with(text: &str, limits: &Limits) -> Result<Definitions, Error> {
    if text.len() > limits.max_bytes {
        return Err(Error::TooLarge {
            size: text.len(),
            limit: limits.max_bytes,
        });
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines = LineIndex::new(text);
    xml::check_depth(text, limits.max_depth, &lines)?;
    if let Some(at) = xml::find_doctype(text) {
        let pos = lines.pos(at);
        return Err(Error::Dtd {
            line: pos.line,
            col: pos.col,
        });
    }
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: limits.max_nodes,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, options).map_err(|e| match e {
        roxmltree::Error::NodesLimitReached => Error::TooManyNodes {
            line: 1,
            col: 1,
            limit: limits.max_nodes,
        },
        roxmltree::Error::DtdDetected => Error::Dtd { line: 1, col: 1 },
        other => {
            let p = other.pos();
            Error::Xml {
                line: p.row,
                col: p.col,
                message: xml::describe_xml_error(&other),
            }
        }
    })?;
    builder::build(&doc, &lines)
}
