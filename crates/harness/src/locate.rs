//! Where a key sits in an experiment file: the line of a key given by its full path
//! (`quant.mixed.bits`, `models[2].width`), from the TOML parser's spans, so that every
//! config error points at the offending line, in nested tables and in the second and later
//! `[[models]]` entries alike.

use std::ops::Range;
use toml::de::{DeTable, DeValue};

/// One step of a key path.
#[derive(Debug, Clone, Copy)]
pub enum Seg<'a> {
    /// A table key.
    Key(&'a str),
    /// An array element (e.g. the n-th `[[models]]`).
    Index(usize),
}

/// The span of the deepest part of `path` present in `text`: the key itself if it is there,
/// else the nearest enclosing entry (e.g. the `[[models]]` entry of a defaulted key).
/// `None` if the text does not parse or not even the first step is present.
pub fn span_of(text: &str, path: &[Seg]) -> Option<Range<usize>> {
    let root = DeTable::parse(text).ok()?;
    let mut table: Option<&DeTable> = Some(root.get_ref());
    let mut value: Option<&DeValue> = None;
    let mut span = None;
    for seg in path {
        match *seg {
            Seg::Key(k) => {
                let t = match (table, value) {
                    (Some(t), None) => t,
                    (_, Some(DeValue::Table(t))) => t,
                    _ => break,
                };
                let Some((key, v)) = t.iter().find(|(key, _)| key.get_ref().as_ref() == k) else { break };
                span = Some(key.span());
                (table, value) = (None, Some(v.get_ref()));
            }
            Seg::Index(i) => {
                let Some(DeValue::Array(a)) = value else { break };
                let Some(v) = a.get(i) else { break };
                span = Some(v.span());
                value = Some(v.get_ref());
            }
        }
    }
    span
}

/// 1-based line and column of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    (before.matches('\n').count() + 1, before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1)
}

/// The 1-based line of `path` in `text` (1 if it cannot be found).
pub fn line_of(text: &str, path: &[Seg]) -> usize {
    span_of(text, path).map_or(1, |s| line_col(text, s.start).0)
}

/// Within the table at `path`, the span of the first key named `token` or whose value's
/// text is `token` or has it as an array element (e.g. `-3` from serde's "invalid value:
/// integer `-3`", or `hiden` from "unknown field `hiden`").
pub fn find_in(text: &str, path: &[Seg], token: &str) -> Option<Range<usize>> {
    let root = DeTable::parse(text).ok()?;
    let find = |t: &'_ DeTable<'_>, k: &str| t.iter().position(|(key, _)| key.get_ref().as_ref() == k);
    let mut value: Option<&DeValue> = None;
    for seg in path {
        let next = match (*seg, value) {
            (Seg::Key(k), None) => root.get_ref().iter().nth(find(root.get_ref(), k)?)?.1.get_ref(),
            (Seg::Key(k), Some(DeValue::Table(t))) => t.iter().nth(find(t, k)?)?.1.get_ref(),
            (Seg::Index(i), Some(DeValue::Array(a))) => a.get(i)?.get_ref(),
            _ => return None,
        };
        value = Some(next);
    }
    let table = match value {
        None => root.get_ref(),
        Some(DeValue::Table(t)) => t,
        Some(_) => return None,
    };
    let matches = |s: &str| s.trim() == token || s.split(['[', ']', ',']).any(|p| p.trim() == token);
    let hit = |(k, v): &(&toml::Spanned<_>, &toml::Spanned<DeValue>)| {
        k.get_ref() == token || text.get(v.span()).is_some_and(matches)
    };
    table.iter().find(hit).map(|(k, _)| k.span())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use Seg::{Index, Key};

    const TEXT: &str = "name = \"x\"\nbits = [4]\n\n[[models]]\nkind = \"mlp\"\n\n[[models]]\nkind = \"res-mlp\"\nwidth = 0\n\n[quant]\nbits = [8]\n\n[quant.mixed]\nbits = [2, 33]\n";

    // The `[[models]]` header of the second entry.
    const ENTRY_LINE: usize = 7;

    #[test]
    fn keys_are_found_by_their_full_path() {
        assert_eq!(line_of(TEXT, &[Key("bits")]), 2);
        assert_eq!(line_of(TEXT, &[Key("quant"), Key("bits")]), 12);
        assert_eq!(line_of(TEXT, &[Key("quant"), Key("mixed"), Key("bits")]), 15);
        assert_eq!(line_of(TEXT, &[Key("models"), Index(1), Key("width")]), 9);
        assert_eq!(line_of(TEXT, &[Key("models"), Index(1), Key("kind")]), 8);
        // A defaulted key falls back to its entry.
        assert_eq!(line_of(TEXT, &[Key("models"), Index(1), Key("depth")]), ENTRY_LINE);
        assert_eq!(line_of("not toml [", &[Key("x")]), 1);
    }

    #[test]
    fn values_are_found_by_their_text() {
        let s = find_in(TEXT, &[Key("models"), Index(1)], "0").unwrap();
        assert_eq!(line_col(TEXT, s.start), (9, 1));
    }
}
