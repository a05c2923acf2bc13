//! Writing SVG text safely: escaping, number formatting, and labels wrapped to a width.

use std::fmt::Write;

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 forbids (control characters a model should not hold anyway).
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A coordinate: whole numbers without decimals, others to two places.
pub(super) fn n(v: f64) -> String {
    if !v.is_finite() {
        return "0".to_owned();
    }
    let r = (v * 100.0).round() / 100.0;
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        let s = format!("{r:.2}");
        s.trim_end_matches('0').to_owned()
    }
}

/// Average advance of a character at 12px in a sans-serif face, to wrap labels.
const CHAR_WIDTH: f64 = 6.6;
const LINE_HEIGHT: f64 = 14.0;

/// Splits `text` into lines of at most `width` pixels, breaking at spaces (a word longer than
/// a line is cut).
pub(super) fn wrap(text: &str, width: f64) -> Vec<String> {
    let per_line = ((width / CHAR_WIDTH).floor() as usize).max(4);
    let mut lines: Vec<String> = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let mut word = word.to_owned();
            while word.chars().count() > per_line {
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                let cut: String = word.chars().take(per_line).collect();
                word = word.chars().skip(per_line).collect();
                lines.push(cut);
            }
            let len = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
            if len > per_line && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines
}

/// A multi-line label centred on (`cx`, `cy`).
pub(super) fn centred(out: &mut String, class: &str, text: &str, cx: f64, cy: f64, width: f64) {
    let lines = wrap(text, width);
    if lines.is_empty() {
        return;
    }
    let first = cy - (lines.len() as f64 - 1.0) * LINE_HEIGHT / 2.0;
    let _ = write!(
        out,
        r#"<text class="{class}" x="{}" y="{}" text-anchor="middle" dominant-baseline="central">"#,
        n(cx),
        n(first)
    );
    for (i, l) in lines.iter().enumerate() {
        let _ = write!(
            out,
            r#"<tspan x="{}" y="{}">{}</tspan>"#,
            n(cx),
            n(first + i as f64 * LINE_HEIGHT),
            escape(l)
        );
    }
    out.push_str("</text>");
}

/// A multi-line label centred in `b`, at most `width` wide.
pub(super) fn in_bounds(out: &mut String, text: &str, b: &crate::model::Bounds, width: f64) {
    centred(
        out,
        "label",
        text,
        b.x + b.width / 2.0,
        b.y + b.height / 2.0,
        width,
    );
}

/// A label read bottom to top in a band (pool and lane names).
pub(super) fn vertical(out: &mut String, text: &str, cx: f64, cy: f64, length: f64) {
    let lines = wrap(text, length);
    let Some(first) = lines.first() else { return };
    let _ = write!(
        out,
        r#"<text class="label" x="{x}" y="{y}" text-anchor="middle" dominant-baseline="central" transform="rotate(-90 {x} {y})">{}</text>"#,
        escape(first),
        x = n(cx),
        y = n(cy),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short() {
        assert_eq!(n(10.0), "10");
        assert_eq!(n(10.5), "10.5");
        assert_eq!(n(-3.256), "-3.26");
        assert_eq!(n(f64::NAN), "0");
    }

    #[test]
    fn labels_wrap_at_spaces_and_cut_long_words() {
        assert_eq!(wrap("Check the credit", 60.0), ["Check the", "credit"]);
        assert_eq!(wrap("Check the credit", 200.0), ["Check the credit"]);
        assert_eq!(wrap("abcdefghij", 30.0), ["abcd", "efgh", "ij"]);
        assert!(wrap("   ", 100.0).is_empty());
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot; ");
    }
}
