//! Small helpers for writing HTML by hand: escaping text and attribute values.

/// `text` with `& < > " '` replaced by entities, safe inside elements and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A token as it should appear in running text: byte-level BPE markers (`Ġ` space, `Ċ` newline)
/// and WordPiece continuations (`##`) turned back into what they stand for.
pub fn display_token(token: &str) -> String {
    if let Some(rest) = token.strip_prefix("##") {
        return rest.to_string();
    }
    token.replace('Ġ', " ").replace(['Ċ', '\n'], "↵").replace(['ĉ', '\t'], "⇥")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped_and_tokens_are_readable() {
        assert_eq!(escape("<b a=\"x\">&'</b>"), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;&lt;/b&gt;");
        assert_eq!(display_token("Ġthe"), " the");
        assert_eq!(display_token("##ing"), "ing");
        assert_eq!(display_token("Ċ"), "↵");
        assert_eq!(display_token("a\nb\t"), "a↵b⇥");
    }
}
